"""Where a page's time goes in the browser: the phases of a new tab's visit and Chromium's JavaScript profile.

A page is "complete" when its last element is drawn, and on one core that can take seconds after the
server has sent everything. This visit records, with the page's own clock: when Streamlit's app shell
first appeared (its JavaScript loaded and started), when the script's last run ended (every message of
the server received), and the last change to the page (the last chart or image drawn). Chrome's sampling
profiler runs over the same visit; its samples are summed per script file, so a reader sees whether the
time is Streamlit's frontend, Plotly drawing charts, Chromium's own work (style, layout, paint, parsing:
"(program)") or waiting ("(idle)": the server, the network, timers).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlparse

# Installed in every tab before any page script (`bench_pages` waits on `__lastChange` too): the page's clock
# at the last change of the document, at the shell's first appearance and at the end of each script run.
WATCH_PHASES_JS = """
window.__lastChange = 0; window.__shell = null; window.__scriptDone = null;
new MutationObserver(() => {
    const now = performance.now();
    window.__lastChange = now;
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) return;
    if (window.__shell === null) window.__shell = now;
    if (app.dataset.testScriptState === "running") window.__running = true;
    if (window.__running && app.dataset.testScriptState === "notRunning") {
        window.__running = false; window.__scriptDone = now;
    }
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""
_PHASES_JS = "() => [window.__shell, window.__scriptDone, window.__lastChange]"
SAMPLING_US = 500


@dataclass
class Profile:
    shell_s: float  # navigation → Streamlit's app shell on screen
    script_done_s: float  # navigation → the server's last script run over
    complete_s: float  # navigation → the last change to the page
    seconds_by_source: dict[str, float]  # profiler samples summed per script file or category

    def lines(self, top: int = 6) -> list[str]:
        """The phases, then the biggest sources of the profile, for the benchmark's printout."""
        drawn = self.complete_s - self.script_done_s
        phases = (
            f"shell {self.shell_s:.2f} s · server done {self.script_done_s:.2f} s · "
            f"complete {self.complete_s:.2f} s ({drawn:.2f} s of drawing after the server was done)"
        )
        total = sum(self.seconds_by_source.values()) or 1.0
        ranked = sorted(self.seconds_by_source.items(), key=lambda item: -item[1])[:top]
        sources = ", ".join(f"{name} {seconds:.2f} s ({seconds / total:.0%})" for name, seconds in ranked)
        return [phases, f"CPU profile: {sources}"]


def _source(call_frame: dict) -> str:
    """A profile node's script file ("(program)", "(idle)", … for Chromium's own categories)."""
    url = call_frame.get("url") or ""
    if not url:
        name = call_frame.get("functionName") or "(anonymous)"
        return name if name.startswith("(") else "(inline or native)"
    path = urlparse(url).path
    return path.rsplit("/", 1)[-1] or path


def seconds_by_source(profile: dict) -> dict[str, float]:
    """Self time per script file, from a `Profiler.stop` profile (samples and their time deltas in µs)."""
    source_of = {node["id"]: _source(node["callFrame"]) for node in profile["nodes"]}
    totals: Counter[str] = Counter()
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        totals[source_of[node_id]] += delta / 1e6
    return dict(totals)


def profile_visit(tabs, url: str, settle) -> Profile:
    """A new tab's visit of `url` with the JavaScript profiler on until it settles. `tabs`: a browser context
    with WATCH_PHASES_JS as its init script."""
    page = tabs.new_page()
    cdp = tabs.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": SAMPLING_US})
    cdp.send("Profiler.start")
    try:
        page.goto(url)
        settle(page)
        profile = cdp.send("Profiler.stop")["profile"]
        shell, done, last = page.evaluate(_PHASES_JS)
    finally:
        page.close()
    return Profile((shell or 0) / 1000, (done or 0) / 1000, last / 1000, seconds_by_source(profile))
