"""--reload (issue 20): the master reloads itself, as on SIGHUP, when its binary, its config file or a
reload_extra_files entry is saved; a broken file is refused with its file:line while the old
workers serve on. Every wait is on a log line, a worker count or an answer."""
import os
import shutil

from harness import BIN, ServerTest, http_get, wait_until

# Longer than the debounce and a master tick, with room for a loaded machine: how long a change
# must stay without effect before "nothing happened" is believed.
NO_RELOAD_WINDOW = 3


def generation_line(n):
    return rf"Hang up: Master \(generation {n}\)"


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def has_inotify(pid):
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify":
                return True
        except OSError:
            pass
    return False


def relink(binary, source):
    """As a linker does: the new binary written beside, then renamed over the old one."""
    shutil.copy2(source, binary + ".new")
    os.replace(binary + ".new", binary)


class DevReload(ServerTest):
    def server_from_its_own_build_dir(self):
        """A server with 2 workers run from a copy of the binary in build/, which a test may replace."""
        s = self.server(["reload = true", "workers = 2"])
        os.mkdir(os.path.join(s.dir, "build"))
        binary = os.path.join(s.dir, "build", "agente-hibrido")
        shutil.copy2(BIN, binary)
        s.binary = binary
        return s.start(workers=2), binary

    def test_editing_server_conf_starts_a_new_generation(self):
        s = self.server(["reload = true", "workers = 1"]).start(workers=1)
        self.assertTrue(s.wait_log(r"reload: watching .*server\.conf"), s.read_log())
        first = set(s.workers())
        s.write_conf(["reload = true", "workers = 2"])
        self.assertTrue(s.wait_log(r"Changed on disk: .*server\.conf; reloading"), s.read_log())
        self.assertTrue(s.wait_log(r"2 workers serving \(generation 2\)", 20), s.read_log())
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and not first & set(s.workers()), 20))
        self.assertEqual(http_get(s.port)[0], 200)
        self.assertNotIn("generation 3", s.read_log())  # one save, one reload

    def test_a_broken_file_is_refused_with_its_line_and_the_old_workers_serve_on(self):
        s = self.server(["reload = true", "workers = 2"]).start(workers=2)
        before = set(s.workers())
        s.write_conf(["reload = true", 'workers = "three"'])  # line 3, after bind and reload
        self.assertTrue(s.wait_log(r'Reload refused, still serving with the previous configuration: '
                                   r'\S*server\.conf:3: workers: expected a positive integer, got "three"'),
                        s.read_log())
        self.assertEqual(set(s.workers()), before)
        for _ in range(20):
            self.assertEqual(http_get(s.port)[0], 200)
        # Fixed: the next save is taken.
        s.write_conf(["reload = true", "workers = 1"])
        self.assertTrue(s.wait_log(generation_line(2), 20), s.read_log())
        self.assertTrue(wait_until(lambda: len(s.workers()) == 1 and not before & set(s.workers()), 20))

    def test_an_atomic_save_renamed_over_the_file_reloads_each_time(self):
        s = self.server(["reload = true"]).start(workers=1)
        for generation, workers in ((2, 2), (3, 1)):
            tmp = s.conf + ".tmp"
            with open(tmp, "w") as f:
                f.write(f'bind = "127.0.0.1:{s.port}"\nreload = true\nworkers = {workers}\n')
            os.replace(tmp, s.conf)  # a new inode each time: the directory's watch sees them all
            self.assertTrue(s.wait_log(generation_line(generation), 20), s.read_log())
            self.assertTrue(s.wait_workers(workers, 20), s.workers())
        self.assertEqual(http_get(s.port)[0], 200)

    def test_a_config_file_reached_through_a_symlink_is_watched_where_it_points(self):
        s = self.server(["reload = true"])
        real = os.path.join(s.dir, "checkout", "server.conf")
        os.mkdir(os.path.dirname(real))
        os.replace(s.conf, real)
        os.symlink(real, s.conf)  # /etc/.../server.conf -> a checkout's
        s.start(workers=1)
        s.write_conf(["reload = true", "workers = 2"])  # written through the link: lands in checkout/
        self.assertTrue(s.wait_log(generation_line(2), 20), s.read_log())
        self.assertTrue(s.wait_workers(2, 20))

    def test_touching_an_extra_file_reloads(self):
        s = self.server()
        prompt = os.path.join(s.dir, "prompts", "system.md")
        os.mkdir(os.path.dirname(prompt))
        with open(prompt, "w") as f:
            f.write("You are helpful.\n")
        s.write_conf(["reload = true", f'reload_extra_files = ["{prompt}"]'])
        s.start(workers=1)
        self.assertTrue(s.wait_log(r"reload: watching .*prompts/system\.md"), s.read_log())
        os.utime(prompt)  # touch
        self.assertTrue(s.wait_log(r"Changed on disk: \S*prompts/system\.md; reloading"), s.read_log())
        self.assertTrue(s.wait_log(generation_line(2), 20), s.read_log())

    def test_an_extra_file_created_later_reloads(self):
        s = self.server()
        later = os.path.join(s.dir, "later.toml")
        s.write_conf(["reload = true", f'reload_extra_files = ["{later}"]'])
        s.start(workers=1)
        with open(later, "w") as f:
            f.write("x = 1\n")
        self.assertTrue(s.wait_log(generation_line(2), 20), s.read_log())

    def test_a_rebuilt_binary_is_what_the_new_workers_run(self):
        s, binary = self.server_from_its_own_build_dir()
        old = set(s.workers())
        self.assertTrue(all(exe_of(p) == binary for p in old))
        relink(binary, BIN)
        self.assertTrue(s.wait_log(r"The binary changed: the new workers run it"), s.read_log())
        self.assertTrue(s.wait_log(r"2 workers serving \(generation 2\)", 30), s.read_log())
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and not old & set(s.workers()), 30))
        # The old workers ran the replaced file ("... (deleted)"); the new ones run the file on disk.
        self.assertTrue(all(exe_of(p) == binary for p in s.workers()), [exe_of(p) for p in s.workers()])
        self.assertEqual(http_get(s.port)[0], 200)

    def test_a_binary_that_cannot_boot_leaves_the_old_workers_serving_until_the_next_build(self):
        s, binary = self.server_from_its_own_build_dir()
        old = set(s.workers())
        broken = os.path.join(s.dir, "dies-at-start")
        with open(broken, "w") as f:
            f.write("#!/bin/sh\nexit 3\n")
        os.chmod(broken, 0o755)
        relink(binary, broken)
        self.assertTrue(s.wait_log(r"Worker \(pid:\d+\) booted and failed: exit code 3", 20), s.read_log())
        self.assertTrue(old <= set(s.workers()))
        for _ in range(20):
            self.assertEqual(http_get(s.port)[0], 200)
        relink(binary, BIN)  # the fix, built
        self.assertTrue(s.wait_log(r"2 workers serving \(generation 3\)", 40), s.read_log())
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and not old & set(s.workers()), 30))
        self.assertEqual(http_get(s.port)[0], 200)

    def test_off_by_default_nothing_is_watched(self):
        s = self.server(["workers = 1"]).start(workers=1)
        self.assertFalse(has_inotify(s.pid))
        before = set(s.workers())
        s.write_conf(["workers = 2"])
        self.assertIsNone(s.wait_log(r"Hang up|Changed on disk", NO_RELOAD_WINDOW), s.read_log())
        self.assertEqual(set(s.workers()), before)
        self.assertNotIn("reload:", s.read_log())

    def test_the_command_line_flag_turns_it_on(self):
        s = self.server(["workers = 1"], args=["--reload"]).start(workers=1)
        self.assertTrue(has_inotify(s.pid))
        s.write_conf(["workers = 2"])
        self.assertTrue(s.wait_log(generation_line(2), 20), s.read_log())
        self.assertTrue(s.wait_workers(2, 20))

    def test_turned_off_by_a_reload_it_stops_watching(self):
        s = self.server(["reload = true"]).start(workers=1)
        s.write_conf(["reload = false"])
        self.assertTrue(s.wait_log(generation_line(2), 20), s.read_log())
        self.assertTrue(wait_until(lambda: not has_inotify(s.pid), 10))
        s.write_conf(["reload = false", "workers = 2"])
        self.assertIsNone(s.wait_log(generation_line(3), NO_RELOAD_WINDOW), s.read_log())
