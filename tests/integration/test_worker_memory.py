"""A worker's memory (issue 17): once ready, an HTTP worker maps of the binary's code what it serves
with, not what its start-up ran (src/core/startup_pages.hpp), and serves on after dropping the rest."""
import os
import shutil
import signal
import tempfile

from harness import BIN, ServerTest, http_get, http_workers, wait_until, wrk


def code_kb(pid, binary):
    """Resident and mapped kB of `binary`'s executable mappings in /proc/PID/smaps."""
    binary = os.path.realpath(binary)
    rss = size = 0
    mine = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                mine = len(fields) >= 6 and fields[1] == "r-xp" and " ".join(fields[5:]) == binary
            elif mine and fields[0] == "Rss:":
                rss += int(fields[1])
            elif mine and fields[0] == "Size:":
                size += int(fields[1])
    return rss, size


def libraries_shared_dirty_kb(pid):
    """kB of the shared libraries' written pages (their relocated tables) that `pid` shares with
    another process: those of a forked worker are its master's; an exec'd one writes its own."""
    total = 0
    library = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                library = len(fields) >= 6 and ".so" in os.path.basename(fields[5])
            elif library and fields[0] == "Shared_Dirty:":
                total += int(fields[1])
    return total


class WorkerMemory(ServerTest):
    def test_a_ready_worker_maps_less_than_half_of_the_binarys_code(self):
        # Its start-up (config, the app's set-up, the routes) touches about four fifths of the code of
        # the real binary, which fault-around maps 64 KiB at a time; serving /health, a fraction.
        s = self.server(["workers = 2", f'accesslog = "{os.path.join(self._dir(), "access.log")}"']).start(workers=2)
        for _ in range(3):
            self.assertEqual(http_get(s.port)[0], 200)
        for w in http_workers(s):
            rss, size = code_kb(w, BIN)
            self.assertGreater(size, 0, f"worker {w} does not map {BIN}")
            self.assertLess(rss, size / 2, f"worker {w} maps {rss} of {size} kB of the binary's code")

    def test_a_worker_serves_on_after_dropping_its_start_up_pages(self):
        # Every page it touches after the drop comes back from the page cache: under load, for the
        # metrics route and a 404, it answers as before.
        s = self.server(["workers = 2"]).start(workers=2)
        total, failures, out = wrk(s.port, seconds=1, connections=10)
        self.assertGreater(total, 0, out)
        self.assertEqual(failures, 0, out)
        self.assertEqual(http_get(s.port, "/metrics")[0], 200)
        self.assertEqual(http_get(s.port, "/no-such-route")[0], 404)

    def _dir(self):
        d = tempfile.mkdtemp(prefix="agente-mem-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def test_an_http_worker_checks_the_rag_language_without_keeping_the_stemmer(self):
        # Reading [rag] checks `language` against libstemmer's list, in every process; only the dirty
        # workers stem, so the HTTP workers close the library after the check (its relocated tables
        # are ~330 KB of private pages a process).
        d = self._dir()
        s = self.server(["workers = 2", "dirty_workers = 1", "", "[rag]", f'state_dir = "{d}"',
                         'language = "portuguese"']).start(workers=3)
        self.assertEqual(http_get(s.port)[0], 200)
        for w in http_workers(s):
            with open(f"/proc/{w}/maps") as f:
                kept = "libstemmer" in f.read()
            self.assertFalse(kept, f"HTTP worker {w} keeps libstemmer loaded")

    def test_a_worker_is_forked_while_the_binary_is_unchanged_and_execd_once_it_changed(self):
        # Forked, a worker (HTTP or dirty) shares its master's relocated library tables (~0.5 MB of
        # PSS a worker); once a build replaced the binary, a HUP's workers are exec'd from the file.
        s = self.server(["workers = 2", "dirty_workers = 1"])
        binary = os.path.join(s.dir, "agente-hibrido")
        shutil.copy2(BIN, binary)
        s.binary = binary
        s.start(workers=3)
        old = set(s.workers())
        for w in old:
            self.assertGreater(libraries_shared_dirty_kb(w), 0, f"worker {w} relocated its own libraries")
        shutil.copy2(BIN, binary + ".new")   # as a linker does: written beside, renamed over
        os.replace(binary + ".new", binary)
        os.kill(s.pid, signal.SIGHUP)
        self.assertTrue(s.wait_log(r"2 workers and 1 dirty workers serving \(generation 2\)", 30), s.read_log())
        self.assertTrue(wait_until(lambda: len(s.workers()) == 3 and not old & set(s.workers()), 30))
        for w in s.workers():
            self.assertEqual(libraries_shared_dirty_kb(w), 0, f"worker {w} was not exec'd from the new binary")
        self.assertEqual(http_get(s.port)[0], 200)
