"""Using a model: every run in one table (``runs``), search with one or two models (``search``),
export (``export``), and labelling people's questions with the search box (``label``)."""
