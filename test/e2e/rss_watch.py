"""rss_watch.py -- the peak growth of a process's resident memory, for the
e2e tests that load firn (body_flood.py, memory_load.py).

    watch = RssWatch(pid)   # takes the values before the load
    ...                     # the load
    growth = watch.stop()   # {"RssAnon": KiB, "RssFile": KiB, "RssShmem": KiB}

Samples /proc/PID/status every 10 ms on a thread of its own; growth is the
largest value seen minus the value before."""
import threading, time

FIELDS = ("RssAnon", "RssFile", "RssShmem")


def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in FIELDS:
                out[k] = int(v.split()[0])
    return out


class RssWatch:
    def __init__(self, pid):
        self.pid = pid
        self.base = rss(pid)
        self.peak = dict(self.base)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample)
        self.thread.start()

    def _sample(self):
        while not self.done.is_set():
            try:
                now = rss(self.pid)
            except OSError:
                return
            for k, v in now.items():
                self.peak[k] = max(self.peak[k], v)
            time.sleep(0.01)

    def stop(self):
        self.done.set()
        self.thread.join()
        return {k: self.peak[k] - self.base[k] for k in self.base}
