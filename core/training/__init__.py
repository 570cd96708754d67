"""Training and tuning: the one plan where every default is decided (``plan``), the fine-tuning loop
(``train``) with its re-planning, device and checkpoint helpers, the validation split, the
corpus-only rotation (``rotate``, ``tune``), and the background jobs that run them."""
