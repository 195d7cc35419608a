"""``omni-sglang selftest``: every example of NIM's document for this model, run against a
server, with checks that hold on any model (status codes, shapes, the reasoning split,
the budget's maximum, schema-valid tool calls, media token counts, EVS, streaming equal
to non-streaming) and a few answer checks only a real checkpoint passes. For the first
run on a new machine (a GPU nobody here has): one table to read, one JSON to send."""
