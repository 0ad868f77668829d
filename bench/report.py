"""What the bench shows: a progress bar on stderr, the final table, the
JSON results file and the PNG plot of time against mailbox size."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


class Progress:
    """One status line on stderr, rewritten in place."""

    def __init__(self, label: str):
        self.label, self.t0 = label, time.perf_counter()
        self.live = sys.stderr.isatty()          # no bar in logs
        self.show(0, 0)

    def show(self, done: int, total: int) -> None:
        if not self.live:
            return
        secs = time.perf_counter() - self.t0
        if total:
            bar = "#" * (30 * done // total)
            text = f"[{bar:<30}] {done}/{total}"
        else:
            text = "..."
        sys.stderr.write(f"\r  {self.label:<44} {text} {secs:6.1f}s\x1b[K")
        sys.stderr.flush()

    def end(self) -> None:
        if self.live:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f}MB" if kb else "-"


def table(results: dict) -> str:
    """Median seconds of ours and Dovecot, the ratio, peak memory."""
    rows = [f"{'msgs':>7} {'workload':<15} {'upas-py':>9} {'dovecot':>9} {'ratio':>7}"
            f" {'ours peak':>9} {'dove peak':>9}  notes"]
    for size in results["sizes"]:
        for name, w in size["workloads"].items():
            o, d = w.get("upas-py"), w.get("dovecot")
            ratio = f"{o['median'] / d['median']:6.1f}x" if o and d and d["median"] else "      -"
            notes = _notes(name, o, d)
            rows.append(f"{size['messages']:>7} {name:<15} {_secs(o):>9} {_secs(d):>9} {ratio}"
                        f" {_mb(o['peak_kb'] if o else 0):>9} {_mb(d['peak_kb'] if d else 0):>9}  {notes}")
        fs = size.get("upasfs_peak_kb", 0)
        rows.append(f"{size['messages']:>7} {'upasfs peak':<15} {_mb(fs):>9} for a "
                    f"{size['mbox_bytes'] / 1e6:.1f} MB mailbox "
                    f"({fs * 1024 / size['mbox_bytes']:.0%})")
        st = size.get("upasfs_start")
        if st:
            rows.append(f"{size['messages']:>7} {'upasfs start':<15} {st['index']:>8.2f}s "
                        f"from its index, {st['no index']:.2f}s without one "
                        f"(first start, writing it: {st['first']:.2f}s)")
    return "\n".join(rows)


def _secs(r: dict | None) -> str:
    return f"{r['median']:.2f}s" if r else "skipped"


_RATES = {"sessions-50": ("sessions_per_s", "sessions/s"),
          "mixed-10": ("commands_per_s", "commands/s")}


def _notes(name: str, o: dict | None, d: dict | None) -> str:
    if name == "idle-10":
        return "; ".join(f"{label} {r['extra']['pss_kb_per_session'] / 1024:.1f} MB PSS a session"
                         for label, r in (("ours", o), ("dovecot", d)) if r)
    if o and "server_cpu_median" in o:
        return "server CPU " + "; ".join(
            f"{label} {r['server_cpu_median']:.2f}s" for label, r in (("ours", o), ("dovecot", d))
            if r and "server_cpu_median" in r)
    if name not in _RATES:
        return ""
    key, unit = _RATES[name]
    parts = []
    for label, r in (("ours", o), ("dovecot", d)):
        if r:
            parts.append(f"{label} {r['extra'][key]:.1f} {unit}, "
                         f"{r['extra']['errors']} errors")
    return "; ".join(parts)


def write_json(results: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    return path


def plot(results: dict, path: Path) -> Path | None:
    """Median time against mailbox size, one panel per workload, in path."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install '.[bench]')")
        return None
    sizes = results["sizes"]
    names = list(dict.fromkeys(n for s in sizes for n in s["workloads"]))
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for server, style in (("upas-py", "o-"), ("dovecot", "s--")):
            pts = [(s["messages"], s["workloads"][name][server]["median"]) for s in sizes
                   if name in s["workloads"] and server in s["workloads"][name]]
            if pts:
                ax.plot(*zip(*pts), style, label=server)
        ax.set_title(name, fontsize=10)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("messages")
        ax.set_ylabel("seconds")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
