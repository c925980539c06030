"""Ghost text as a user sees it: real Neovim and Vim, the plugin installed the README's way.

For each editor, in a terminal of its own (tmux, no display), with HOME, the editor's config
and SCRIBE_HOME in a fresh temp dir and the embedded default model:

- first ghost: the editor opens a ~700-token Markdown draft; 1 s later the "user" goes to its
  end and types a phrase; the time from starting the editor to the first ghost text drawn
  (`--opens` times, a fresh editor and server each time);
- pause -> ghost: in one session, the user types phrases with realistic gaps between keys
  (lognormal, median 140 ms, longer between words) and pauses after each; the time from the
  pause's last keystroke to the ghost text drawn for it (`--pauses` of them);
- the server's own figures (:ScribeStatus: request -> answer p50 and p95) beside them.

The plugin is a symlink in ~/.vim/pack/scribe/start/ (Vim) or
~/.local/share/nvim/site/pack/scribe/start/ (Neovim), with g:scribe_command set to the venv's
`scribe`, as the README says. What is drawn is seen by bench/editor_probe.vim, which watches
the extmarks / text properties the plugin draws, at each redraw (Neovim) or after each
handled message (Vim) and every 5 ms. Keys go in through tmux, as a terminal would send them.

    .venv/bin/python bench/editor_latency.py [--editors nvim,vim] [--opens 5] [--pauses 30]
    .venv/bin/python bench/editor_latency.py --tree /tmp/before   # another checkout of scribe
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("editor_probe.vim")
PROSE = ROOT / "bench" / "heldout" / "prose.txt"  # text the default model never saw
EDITORS = {"nvim": ["nvim"], "vim": ["vim"]}
NAMES = {"nvim": "Neovim", "vim": "Vim"}
SIZE = ("120", "40")


def draft_and_phrases(seed: int) -> tuple[str, list[str]]:
    """The opened document (its last paragraph unfinished) and phrases to type after it."""
    text = PROSE.read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 80]
    draft = "\n\n".join(paragraphs[:6])[:2800]
    draft = draft[: draft.rfind(" ")]
    sentences = [s.strip() for p in paragraphs[20:200] for s in p.split(". ") if s.strip()]
    words = [w for s in sentences for w in s.split() if w.isascii()]
    rng = random.Random(seed)
    phrases = []
    for _ in range(500):
        start = rng.randrange(len(words) - 8)
        phrases.append(" " + " ".join(words[start : start + rng.randint(3, 7)]))
    return draft, phrases


def key_gaps(text: str, rng: random.Random) -> list[float]:
    """Seconds before each character: a typist's rhythm, slower at word starts."""
    gaps = []
    for char in text:
        gap = rng.lognormvariate(0.0, 0.35) * 0.140
        gaps.append(min(0.45, max(0.05, gap * (1.3 if char == " " else 1.0))))
    return gaps


class Session:
    """One editor in tmux with the plugin installed the README's way, probe attached."""

    def __init__(self, editor: str, tree: Path, scribe: Path, work: Path, draft: str) -> None:
        self.home = work / "home"
        self.log = work / "probe.jsonl"
        self.state_file = work / "state.json"
        self.socket = f"scribe-bench-{os.getpid()}-{editor}"
        plugin = tree / "plugins" / "editors" / "vim"
        if editor == "nvim":
            pack = self.home / ".local/share/nvim/site/pack/scribe/start"
            rc = self.home / ".config/nvim/init.vim"
        else:
            pack = self.home / ".vim/pack/scribe/start"
            rc = self.home / ".vimrc"
        pack.mkdir(parents=True)
        (pack / "scribe").symlink_to(plugin)
        rc.parent.mkdir(parents=True, exist_ok=True)
        rc.write_text(
            "set nocompatible\nfiletype plugin indent on\nsyntax on\n"
            "set noswapfile shortmess+=I\n"
            f"let g:scribe_command = ['{scribe}']\n"
            f"source {PROBE}\n",
            encoding="utf-8",
        )
        (work / "draft.md").write_text(draft + "\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "VIM"))}
        env.update(
            HOME=str(self.home),
            SCRIBE_HOME=str(work / "scribe-home"),
            HF_HUB_OFFLINE="1",
            SCRIBE_BENCH_LOG=str(self.log),
            SCRIBE_BENCH_STATE=str(self.state_file),
            TERM="xterm-256color",
        )
        if tree != ROOT:  # the package from that tree, the venv from this one
            pkg = work / "pkg" / "scribe"
            pkg.mkdir(parents=True)
            for room in ("engine", "tui", "plugins"):
                (pkg / room).symlink_to(tree / room)
            env["PYTHONPATH"] = str(pkg.parent)
        self.env = env
        self.command = [*EDITORS[editor], str(work / "draft.md")]
        self.started = 0.0
        self.read_at = 0

    def start(self) -> None:
        self.started = time.time()
        self.tmux("new-session", "-d", "-s", "bench", "-x", SIZE[0], "-y", SIZE[1], *self.command)
        self.keys_client = subprocess.Popen(
            ["tmux", "-L", self.socket, "-C", "attach", "-t", "bench"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, env=self.env
        )
        return done.stdout

    def send(self, *keys: str, literal: bool = False) -> None:
        """Keys through a tmux control client: no process started per key."""
        quoted = " ".join("'" + k.replace("'", "'\\''") + "'" for k in keys)
        line = f"send-keys -t bench {'-l ' if literal else ''}{quoted}\n"
        assert self.keys_client.stdin is not None
        self.keys_client.stdin.write(line.encode())
        self.keys_client.stdin.flush()

    def type(self, text: str, rng: random.Random) -> None:
        for char, gap in zip(text, key_gaps(text, rng), strict=True):
            time.sleep(gap)
            self.send(char, literal=True)

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def wait(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.send("Escape")
        self.send(":qa!", "Enter")
        pid = self.state().get("pid", 0)
        self.wait(lambda: not self.tmux("list-sessions"), 10)
        if self.keys_client.stdin:
            self.keys_client.stdin.close()
        self.keys_client.wait(10)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        if pid and self.wait(lambda: not Path(f"/proc/{pid}").exists(), 10) is False:
            print(f"  warning: the server (pid {pid}) outlived the editor", file=sys.stderr)


def to_bench_clock(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Editor timestamps on time.time(): gettimeofday as is, a monotonic clock shifted."""
    for event in events:
        event["t"] = float(event["t"])
    start = next((e for e in events if e["e"] == "start"), None)
    if start is not None and start["t"] < 1e9:  # CLOCK_MONOTONIC: shift it by the wall clock
        shift = time.time() - time.monotonic()
        for event in events:
            event["t"] += shift
    return events


def first_ghost(session: Session, phrase: str, rng: random.Random) -> dict[str, float]:
    session.start()
    time.sleep(max(0.0, session.started + 1.0 - time.time()))
    session.send("G", "A")  # typing starts 1 s after opening, at the end of the draft
    session.type(phrase, rng)
    session.wait(lambda: any(e["e"] == "appear" for e in session.events()), 30)
    events = to_bench_clock(session.events())
    session.close()

    def first(kind: str, state: str | None = None) -> float:
        times = [e["t"] for e in events if e["e"] == kind and state in (None, e.get("state"))]
        return round(times[0] - session.started, 3) if times else float("nan")

    return {
        "first_ghost_s": first("appear"),
        "first_key_s": first("change"),
        "server_starting_s": first("server", "starting"),
        "server_ready_s": first("server", "ready"),  # initialize answered (20 ms resolution)
    }


def pause_to_ghost(events: list[dict[str, Any]], pause_starts: list[float]) -> list[float]:
    """For each pause (the bench's clock just after its last key was sent), the time from that
    key's change in the editor to the ghost text drawn for it: 0 when ghost text still shows
    after it (the user typed what it said, and the rest stays), NaN when none came before the
    next key (the model had nothing to suggest there)."""
    results = []
    kinds = ("appear", "vanish", "change")
    for pause in pause_starts:
        before = [e for e in events if e["e"] == "change" and e["t"] <= pause + 0.5]
        if not before:
            continue
        last = before[-1]
        shown = bool(last.get("shown"))
        latency = float("nan")
        for event in (e for e in events if e["t"] > last["t"] and e["e"] in kinds):
            if event["e"] == "appear":
                latency = event["t"] - last["t"]
                break
            if event["e"] == "change":
                break
            shown = False  # a vanish: the old ghost went; wait for the new one
        if latency != latency and shown:
            latency = 0.0
        results.append(latency)
    return results


def percentile(values: list[float], pct: float) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(pct / 100 * (len(values) - 1)))]


def pauses_run(session: Session, phrases: list[str], count: int, pause_s: float, rng) -> dict:
    session.start()
    session.send("G", "A")
    session.type(phrases[0], rng)  # the server starts, loads and answers once: then measure
    session.wait(lambda: any(e["e"] == "appear" for e in session.events()), 60)
    time.sleep(pause_s)
    pause_starts = []
    for phrase in phrases[1 : count + 1]:
        session.type(phrase, rng)
        pause_starts.append(time.time())
        time.sleep(pause_s)
    session.send("Escape")
    session.send(":ScribeStatus", "Enter")
    session.wait(lambda: session.state().get("last_status"), 10)
    time.sleep(0.5)
    status = session.state().get("last_status", {})
    events = to_bench_clock(session.events())
    session.close()
    latencies = pause_to_ghost(events, pause_starts)
    typed = sum(1 for e in events if e["e"] == "change")
    while_typing = sum(1 for e in events if e["e"] == "appear") - sum(1 for v in latencies if v > 0)
    return {
        "pause_starts": pause_starts,
        "events": events,  # the probe's log, on the bench's clock: to check any figure above
        "pause_to_ghost_ms": [round(v * 1000, 1) for v in latencies],
        "server": status,
        "keys": typed,
        "ghosts_while_typing": max(0, while_typing),
    }


def cpu_kind() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "?"
    )
    flags = next((ln for ln in info.splitlines() if ln.startswith("flags")), "")
    simd = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "no AVX2"
    return f"{model}, {len(os.sched_getaffinity(0))} cores, {simd}"


def version(program: str) -> str:
    out = subprocess.run([program, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else program


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--editors", default="nvim,vim", help="comma-separated: nvim, vim")
    parser.add_argument("--opens", type=int, default=5, help="first-ghost trials per editor")
    parser.add_argument("--pauses", type=int, default=30, help="pauses measured per editor")
    parser.add_argument("--pause-s", type=float, default=1.5, help="how long each pause is")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the scribe checkout to measure")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    tree = args.tree.resolve()
    scribe = Path(sys.executable).parent / "scribe"
    if not scribe.exists() or shutil.which("tmux") is None:
        sys.exit("bench: needs tmux and the venv's scribe (bash scripts/setup.sh)")
    draft, phrases = draft_and_phrases(args.seed)
    rev = subprocess.run(
        ["git", "-C", str(tree), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    load = os.getloadavg()[0]
    print(f"scribe tree {tree} ({rev}); CPU: {cpu_kind()}; load average {load:.1f}")
    print(f"embedded default model; {len(draft)}-char draft; typing starts 1 s after opening")
    report: dict[str, Any] = {"tree": str(tree), "rev": rev, "cpu": cpu_kind(), "runs": {}}
    for editor in args.editors.split(","):
        if shutil.which(EDITORS[editor][0]) is None:
            print(f"{editor}: not installed, skipped")
            continue
        rng = random.Random(args.seed)
        opens = []
        for i in range(args.opens):
            with tempfile.TemporaryDirectory(prefix="scribe-editor-bench-") as work:
                session = Session(editor, tree, scribe, Path(work), draft)
                opens.append(first_ghost(session, phrases[i], rng))
        with tempfile.TemporaryDirectory(prefix="scribe-editor-bench-") as work:
            session = Session(editor, tree, scribe, Path(work), draft)
            run = pauses_run(session, phrases[10:], args.pauses, args.pause_s, rng)
        firsts = [o["first_ghost_s"] for o in opens] or [float("nan")]
        ms = run["pause_to_ghost_ms"]
        server = run["server"].get("latency_ms", {}) if isinstance(run["server"], dict) else {}
        missed = sum(1 for v in ms if v != v)
        kept = sum(1 for v in ms if v == 0)
        print(
            f"{NAMES[editor]:<7} ({version(EDITORS[editor][0])}): first ghost after open "
            f"median {statistics.median(firsts):.2f} s (min {min(firsts):.2f}, max "
            f"{max(firsts):.2f}, {len(firsts)} opens); pause -> ghost p50 "
            f"{percentile(ms, 50):.0f} ms, p95 {percentile(ms, 95):.0f} ms ({len(ms)} pauses: "
            f"{kept} kept showing a ghost typed into, {missed} got none); server p50 "
            f"{server.get('p50')} ms, p95 "
            f"{server.get('p95')} ms; {run['ghosts_while_typing']} ghosts shown while typing "
            f"{run['keys']} keys"
        )
        report["runs"][editor] = {"opens": opens, **run}
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
