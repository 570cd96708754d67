"""A training reporter for tests: keeps every status and log line it is told, never stops."""


class Lines:
    def __init__(self):
        self.lines: list[str] = []

    def status(self, text): self.lines.append(text)
    def progress(self, fraction): pass
    def log(self, line): self.lines.append(line)
    def point(self, series, step, value, epoch=None): pass
    def should_stop(self): return False
