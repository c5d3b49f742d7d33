// tests/fake_upstream/fake_openai.py as a child process on an ephemeral loopback port, for unit tests
// of code that calls an upstream through the gateway (the RAG embedder). Ready once it printed its
// port; killed and reaped with the object.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace agente::rag::testing {

class FakeUpstream {
public:
    FakeUpstream() {
        int out[2];
        if (pipe(out) != 0) return;
        pid_t parent = getpid();
        pid_ = fork();
        if (pid_ == 0) {
            // Dies with the test: a test binary that crashed used to leave it holding ctest's
            // output pipe, and a crash looked like a hang.
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(127);
            dup2(out[1], 1);
            close(out[0]);
            std::string script = std::string(AGENTE_SOURCE_DIR) + "/tests/fake_upstream/fake_openai.py";
            execlp("python3", "python3", script.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        close(out[1]);
        FILE* f = fdopen(out[0], "r");
        char line[64] = {};
        if (f && std::fgets(line, sizeof line, f)) std::sscanf(line, "PORT %d", &port_);
        if (f) std::fclose(f);
    }
    ~FakeUpstream() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    int port() const { return port_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

private:
    pid_t pid_ = -1;
    int port_ = 0;
};

}  // namespace agente::rag::testing
