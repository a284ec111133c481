"""Privacy: checksums, PRC recognizers, the zh analyzer, pseudonyms and column policies."""
