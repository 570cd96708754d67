"""Documents and questions: files into passages (``corpus``), question→passage pairs from files or
generated offline (``pairs``), the demo corpus (``demo``) and BEIR folders in and out (``beir``)."""
