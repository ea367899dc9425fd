"""The default Korean analysis files: `userdict_ko.txt` (nori user dictionary) and
`synonyms_ko.txt` (Solr-format synonyms). Admins point `CROSSDOC_USER_DICTIONARY`
and `CROSSDOC_SYNONYMS` at edited copies; Elasticsearch reads the same files."""
