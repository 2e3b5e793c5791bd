"""A project logged by trackio's own client with what the Traces, Artifacts and Media pages show:
traces with nested spans and tool calls, an artifact with two versions and an alias consumed by
another run, project files, and 3D objects (GLB, OBJ, STL). Hostile strings are part of it.

`log_pages_zoo(data_dir)` writes project PAGES into data_dir with trackio 0.43 in a subprocess;
`log_trace(data_dir, text)` adds one more trace later (a live refresh).
"""

from __future__ import annotations

import struct
from pathlib import Path

from trackio_zoo import HOSTILE, run_trackio

PAGES = "pages"
MODEL = "my-model"


def triangle_glb() -> bytes:
    """The smallest self-contained GLB a viewer can draw: one triangle."""
    positions = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)
    document = (
        b'{"asset":{"version":"2.0"},"scene":0,"scenes":[{"nodes":[0]}],"nodes":[{"mesh":0}],'
        b'"meshes":[{"primitives":[{"attributes":{"POSITION":0}}]}],'
        b'"buffers":[{"byteLength":36}],"bufferViews":[{"buffer":0,"byteLength":36}],'
        b'"accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3",'
        b'"min":[0,0,0],"max":[1,1,0]}]}')
    document += b" " * (-len(document) % 4)
    chunks = (struct.pack("<II", len(document), 0x4E4F534A) + document
              + struct.pack("<II", len(positions), 0x004E4942) + positions)
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
STL = ("solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
       "endloop\nendfacet\nendsolid t\n")

PAGES_CODE = f"""
import pathlib, tempfile, trackio
HOSTILE = {HOSTILE!r}
work = pathlib.Path(tempfile.mkdtemp())
(work / "model.glb").write_bytes({triangle_glb()!r})
(work / "mesh.obj").write_text({OBJ!r})
(work / "part.stl").write_text({STL!r})
(work / "notes.txt").write_text("hello from notes " + HOSTILE)
(work / "weights-v1.bin").write_bytes(b"v1" * 100)
(work / "weights-v2.bin").write_bytes(b"v2" * 300)

def agent_trace(question, failing=False):
    spans = [
        {{"id": "root", "name": "agent run", "kind": "span", "status": "success",
          "start_time": "2026-01-01T00:00:00.000Z", "end_time": "2026-01-01T00:00:02.500Z"}},
        {{"id": "plan", "parent_id": "root", "name": "plan " + HOSTILE, "kind": "generation",
          "model": "gpt-test", "status": "success",
          "start_time": "2026-01-01T00:00:00.100Z", "end_time": "2026-01-01T00:00:01.100Z",
          "usage": {{"input_tokens": 120, "output_tokens": 30}}, "cost_usd": 0.0021,
          "input": [{{"role": "user", "content": question}}], "output": "call the weather tool"}},
        {{"id": "tool", "parent_id": "plan", "name": "get_weather", "kind": "tool",
          "status": "error" if failing else "success",
          "start_time": "2026-01-01T00:00:01.200Z", "end_time": "2026-01-01T00:00:01.700Z",
          "input": {{"city": "Paris"}},
          "error": ("timeout " + HOSTILE) if failing else None,
          "output": None if failing else {{"temp_c": 21}}}},
        {{"id": "answer", "parent_id": "root", "name": "answer", "kind": "generation",
          "model": "gpt-test", "status": "success", "duration_ms": 700,
          "start_time": "2026-01-01T00:00:01.800Z",
          "usage": {{"prompt_tokens": 150, "completion_tokens": 12}}, "cost_usd": 0.001}},
    ]
    messages = [
        {{"role": "system", "content": "You are helpful."}},
        {{"role": "user", "content": question}},
        {{"role": "assistant", "content": None, "tool_calls": [
            {{"id": "call_1", "type": "function",
              "function": {{"name": "get_weather", "arguments": '{{"city": "Paris"}}'}}}}]}},
        {{"role": "tool", "tool_call_id": "call_1", "content": '{{"temp_c": 21}}'}},
        {{"role": "assistant", "content": "It is 21 C in Paris. " + HOSTILE}},
    ]
    return trackio.Trace(messages=messages, spans=spans,
                         metadata={{"session_id": "s-1", "note": HOSTILE}})

trackio.init(project={PAGES!r}, name="producer", auto_log_cpu=False)
trackio.log({{"train/loss": 0.5}}, step=0)
trackio.log({{"agent": agent_trace("What is the weather in Paris?")}}, step=1)
trackio.log({{"agent": agent_trace("Weather in Paris again, failing " + HOSTILE, failing=True)}},
            step=2)
trackio.log({{"chat": trackio.Trace(messages=[{{"role": "user", "content": "plain hello"}},
                                              {{"role": "assistant", "content": "hi"}}])}}, step=2)
trackio.log({{"scene": trackio.Object3D(str(work / "model.glb"), caption="tri " + HOSTILE),
             "mesh": trackio.Object3D(str(work / "mesh.obj")),
             "part": trackio.Object3D(str(work / "part.stl"))}}, step=3)
art = trackio.Artifact({MODEL!r}, type="model", description="weights " + HOSTILE,
                       metadata={{"epochs": 3, "note": HOSTILE}})
art.add_file(str(work / "weights-v1.bin"), name="weights.bin")
trackio.log_artifact(art)
art2 = trackio.Artifact({MODEL!r}, type="model")
art2.add_file(str(work / "weights-v2.bin"), name="weights.bin")
art2.add_file(str(work / "notes.txt"), name="docs/notes.txt")
trackio.log_artifact(art2, aliases=["best"])
trackio.save(str(work / "notes.txt"))
trackio.finish()

trackio.init(project={PAGES!r}, name="consumer " + HOSTILE, auto_log_cpu=False)
trackio.log({{"eval/acc": 0.9}}, step=0)
trackio.use_artifact({MODEL!r} + ":best")
trackio.finish()
"""


def log_pages_zoo(data_dir: Path) -> Path:
    """Write project PAGES with trackio's client; return its database path."""
    run_trackio(data_dir, PAGES_CODE)
    return Path(data_dir) / f"{PAGES}.db"


def log_trace(data_dir: Path, text: str, step: int = 9) -> None:
    """One more trace in run "producer" (resumed), whose user message is `text`."""
    run_trackio(data_dir, f"""
import trackio
trackio.init(project={PAGES!r}, name="producer", resume="allow", auto_log_cpu=False)
trackio.log({{"agent": trackio.Trace(messages=[{{"role": "user", "content": {text!r}}}])}},
            step={step})
trackio.finish()
""")
