"""Measuring a model: encode a corpus once and score every embedding size (``evaluate``), the
paired bootstrap that says whether a difference is real (``significance``), and what each size
and precision costs to store (``storage``)."""
