"""Reading report text: the CheXpert-style labeler, its lexicon and rules, and the finding reader.

Shared by annotate (the offline teacher reads reports), validate (checks read traces and reports) and eval
(clinical efficacy). Nothing here knows about a stage.
"""
