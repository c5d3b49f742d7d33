"""What server.conf names outside the process, checked with file:line at --check-config, at start and
on reload (issue 16): files that cannot be written, directories that do not exist (never created),
users and groups that do not exist."""
import os
import signal
import subprocess

from harness import BIN, ServerTest


class ConfigChecks(ServerTest):
    def check(self, s):
        return subprocess.run([BIN, "-c", s.conf, "--check-config"], capture_output=True, text=True, timeout=10)

    def test_a_file_in_a_missing_directory_is_an_error_and_nothing_is_created(self):
        for setting in ("pidfile", "accesslog", "errorlog"):
            with self.subTest(setting=setting):
                s = self.server()
                missing = os.path.join(s.dir, "missing")
                s.write_conf([f'{setting} = "{missing}/file"'])
                r = self.check(s)
                self.assertEqual(r.returncode, 1)
                self.assertEqual(r.stderr.strip(), f'Error: {s.conf}:2: {setting}: the directory "{missing}" '
                                                   'does not exist (it is not created)')
                started = subprocess.run([BIN, "-c", s.conf], capture_output=True, text=True, timeout=10)
                self.assertEqual(started.returncode, 1)  # at start too, before anything is bound
                self.assertIn(f"{s.conf}:2: {setting}: the directory", started.stderr)
                self.assertFalse(os.path.exists(missing))

    def test_unknown_user_and_group_are_errors(self):
        s = self.server()
        s.write_conf(['user = "no-such-user-here"'])
        self.assertIn(f'{s.conf}:2: user: no such user "no-such-user-here"', self.check(s).stderr)
        s.write_conf(["workers = 1", 'group = "no-such-group-here"'])
        self.assertIn(f'{s.conf}:3: group: no such group "no-such-group-here"', self.check(s).stderr)

    def test_an_unwritable_log_is_an_error(self):
        s = self.server()
        locked = os.path.join(s.dir, "locked")
        os.mkdir(locked, 0o555)
        os.chmod(s.dir, 0o755)
        log = os.path.join(locked, "access.log")
        settings = [f'accesslog = "{log}"']
        if os.geteuid() == 0:
            settings.append('user = "nobody"')  # root writes anywhere: the workers' user does not
        s.write_conf(settings)
        r = self.check(s)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f'{s.conf}:2: accesslog: cannot create "{log}": Permission denied', r.stderr)

    def test_a_reload_naming_a_missing_directory_is_refused(self):
        s = self.server(["workers = 1"]).start(workers=1)
        before = s.workers()
        missing = os.path.join(s.dir, "gone")
        s.write_conf(["workers = 1", f'errorlog = "{missing}/error.log"'])
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(rf'Reload refused.*server\.conf:3: errorlog: the directory "{missing}"'),
                        s.read_log())
        self.assertFalse(os.path.exists(missing))
        self.assertEqual(s.workers(), before)
        self.assertTrue(s.healthy())

    def test_an_app_table_refused_at_start_exits_1_with_its_line_not_an_abort(self):
        # The app's own check at start (an api_key_env not set) used to escape the master as an
        # exception: "terminate called", SIGABRT, a core dump.
        s = self.server(["[providers.x]", 'base_url = "http://127.0.0.1:9/v1"', 'api_key_env = "AGENTE_TEST_UNSET_KEY"'])
        started = subprocess.run([BIN, "-c", s.conf], capture_output=True, text=True, timeout=30,
                                 env={k: v for k, v in os.environ.items() if k != "AGENTE_TEST_UNSET_KEY"})
        self.assertEqual(started.returncode, 1, started.stderr)
        self.assertIn(f"Error: {s.conf}:4: providers.x.api_key_env: environment variable AGENTE_TEST_UNSET_KEY "
                      "is not set", started.stderr)
        self.assertNotIn("terminate called", started.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
