"""How our custom expectations read in Data Docs: one sentence each, like GX's own."""

from __future__ import annotations

from typing import Any, ClassVar

from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer
from great_expectations.render.util import num_to_str


class Described:
    """Mixin for a column map expectation: Data Docs show "$column <sentence>" (with mostly)."""

    sentence: ClassVar[str]

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: ExpectationConfiguration | None = None,
        result: ExpectationValidationResult | None = None,
        runtime_configuration: dict[str, Any] | None = None,
    ) -> list[RenderedStringTemplateContent]:
        config = configuration or (result.expectation_config if result is not None else None)
        config_kwargs = dict(config.kwargs) if config is not None else {}
        params: dict[str, Any] = {"column": config_kwargs.get("column")}
        template = f"$column {cls.sentence}"
        styling = (runtime_configuration or {}).get("styling") or {}
        mostly = config_kwargs.get("mostly")
        if isinstance(mostly, int | float) and mostly < 1.0:
            params["mostly_pct"] = num_to_str(mostly * 100, no_scientific=True)
            template += " (at least $mostly_pct % of values)"
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={"template": template, "params": params, "styling": styling},
            )
        ]
