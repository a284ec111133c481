"""A model card in the console: the rows of the review package's section 十, grouped in tabs."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.queries import CardSection, ModelCard

CARD_TABS = ("模型概况", "区分能力与校准", "稳定性", "分群表现", "分箱表", "特征字典与否决规则")


def static_table(frame: pl.DataFrame) -> None:
    """Small review facts as a static table: every cell readable without scrolling a grid."""
    st.table(frame, hide_index=True)


def _table(frame_section: CardSection) -> None:
    """A titled static table: every figure readable and printable without scrolling a grid."""
    st.markdown(f"**{frame_section.title}**")
    if frame_section.note:
        st.caption(frame_section.note)
    if frame_section.frame.height:
        static_table(frame_section.frame)
    else:
        st.caption(frame_section.empty)


def _tables(sections: list[CardSection]) -> None:
    for s in sections:
        _table(s)


def _generic(card: ModelCard) -> None:
    """A card without a scorecard (a rule product's counts): its facts, then its count tables."""
    if card.overview.height:
        static_table(card.overview)
    _tables(card.sections)
    if not card.overview.height and not card.sections:
        st.caption("模型卡为空。")


def show(card: ModelCard) -> None:
    """The validation pack in the order a model reviewer reads it; a generic card as it comes."""
    if not card.scorecard:
        _generic(card)
        return
    overview, performance, stability, segments, bins, features = st.tabs(CARD_TABS)
    with overview:
        static_table(card.overview)
        st.markdown("**评分结果**")
        static_table(card.scoring)
        _tables(card.part("grades"))
    with performance:
        _tables(card.part("discrimination", "calibration"))
    with stability:
        _tables(card.part("stability"))
    with segments:
        _tables(card.part("segments"))
    with bins:
        st.caption(
            "每个变量的分箱、各箱样本数与违约率（开发样本）、WoE 和该箱计入总分的分值；"
            "总分为企业在各变量所在分箱的分值之和。"
        )
        for b in card.bins:
            with st.expander(b.title):
                static_table(b.frame)
    with features:
        _tables(card.part("features", "knockouts"))
