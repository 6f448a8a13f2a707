"""The decoder: a trust boundary of its own (issue 15 §1, ADR 0038).

The paper's platform layer begins with the decoder: "exploitation of the decoder is
possible before the frame is analysed". FFmpeg parses the camera's bitstream, the most
exposed parser in the perimeter, so it runs in a sandboxed child of ingest
(:mod:`kontur.decoder._child`): no network, no data dir, seccomp with no new process,
limits, uid 65534. Ingest keeps the trusted work (demuxing, NAL splitting, Media Signing,
the segment store, the frame → GOP mapping) and talks to it through
:class:`kontur.decoder.client.SandboxedDecoder`, which treats every answer as hostile.

This package's ``__init__`` imports nothing: the child must enter its sandbox before numpy
or PyAV is loaded.
"""
