"""What an HTTP worker carries (issue 17: a worker's PSS at most 2 MB): libraries that only the master
(libsystemd), a RAG store's connections (libstemmer), the PostgreSQL store (libpq) or an ingest (the
formats module: poppler, libxml2, ICU, cmark) use are opened where they are used, not by every process
of the binary, since loading one relocates its tables into private pages."""
import os
import signal

from harness import BIN, ServerTest, http_get, http_workers, wait_until

MASTER_ONLY = ("libsystemd.so", "libgcrypt.so", "liblz4.so", "libzstd.so")
STORE_ONLY = ("libstemmer.so", "libpq.so")   # libpq: where [cluster]'s PostgreSQL store runs
INGEST_ONLY = ("agente-hibrido-formats.so", "libpoppler", "libxml2.so", "libicuuc.so", "libcmark.so",
               "libfreetype.so", "libnss3.so")


def mapped(pid):
    with open(f"/proc/{pid}/maps") as f:
        return {os.path.basename(line.split()[5]) for line in f if len(line.split()) > 5}


class Footprint(ServerTest):
    def test_an_http_worker_maps_no_library_only_the_master_a_store_or_an_ingest_needs(self):
        s = self.server(["workers = 2", "dirty_workers = 1"], binary=BIN).start(workers=3)
        status, _, _ = http_get(s.port, "/health")
        self.assertEqual(status, 200)
        workers = http_workers(s)
        self.assertEqual(len(workers), 2, s.read_log())
        for w in workers:
            libraries = mapped(w)
            for name in MASTER_ONLY + STORE_ONLY + INGEST_ONLY:
                self.assertFalse([l for l in libraries if l.startswith(name)], f"worker {w} maps {name}")

    def test_a_worker_forked_after_the_master_loaded_libsystemd_does_not_keep_it(self):
        # Under systemd the master has opened libsystemd by its first READY=1; a worker forked from
        # it (a HUP's, a replacement) would carry the library and the five it pulls in.
        s = self.server(["workers = 2"], binary=BIN)
        s.env["NOTIFY_SOCKET"] = os.path.join(s.dir, "notify.sock")   # nobody listens: harmless
        s.start(workers=2)
        self.assertTrue(wait_until(lambda: any(l.startswith("libsystemd.so") for l in mapped(s.pid)), 10))
        old = set(http_workers(s))
        os.kill(s.pid, signal.SIGHUP)
        self.assertTrue(s.wait_log(r"2 workers serving \(generation 2\)", 30), s.read_log())
        self.assertTrue(wait_until(lambda: len(http_workers(s)) == 2 and not old & set(http_workers(s)), 30))
        for w in http_workers(s):
            libraries = mapped(w)
            for name in MASTER_ONLY:
                self.assertFalse([l for l in libraries if l.startswith(name)], f"worker {w} maps {name}")
