"""Deciding: the comparison that matters and its headline (``compare``), the next step a team
should take (``workflow``), and the RAG-or-fine-tuning questionnaire (``decision``). The top
layer under the CLI."""
