"""Sessions in, a training dataset out: redaction, tool definitions, the family split, rendering
with the student's template, assistant-token masks, windows, the data report.
"""
