#include "core/proc_title.hpp"

#include <sys/prctl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace agente::core {

namespace {
char* area_begin = nullptr;
std::size_t area_size = 0;
// The heap copies of the environment, owned here for the process's life: environ points at them
// too, but unsetenv() drops its pointer to a variable (a worker's AGENTE_WORKER_*), which left the
// string owned by nobody (LeakSanitizer reported it in every process).
char** environ_copies = nullptr;
}  // namespace

// argv strings and environ strings lie back to back; ps reads /proc/PID/cmdline from that span.
// environ is copied to the heap so the whole span can hold the new title.
void init_proc_title(int argc, char** argv) {
    if (argc == 0 || !argv[0]) return;
    char* begin = argv[0];
    char* end = argv[0] + std::strlen(argv[0]) + 1;
    for (int i = 1; i < argc; ++i)
        if (argv[i] == end) end = argv[i] + std::strlen(argv[i]) + 1;
    std::size_t n = 0;
    while (environ[n]) ++n;
    environ_copies = new char*[n + 1];
    for (std::size_t i = 0; i < n; ++i) {
        if (environ[i] == end) end = environ[i] + std::strlen(environ[i]) + 1;
        environ_copies[i] = ::strdup(environ[i]);
    }
    environ_copies[n] = nullptr;
    environ = new char*[n + 1];
    std::copy(environ_copies, environ_copies + n + 1, environ);
    for (int i = 0; i < argc; ++i) argv[i] = ::strdup(argv[i]);  // the caller still reads argv
    area_begin = begin;
    area_size = std::size_t(end - begin);
}

void set_proc_title(const std::string& title) {
    ::prctl(PR_SET_NAME, title.substr(title.find(": ") == std::string::npos ? 0 : title.find(": ") + 2, 15).c_str());
    if (!area_begin || area_size == 0) return;
    std::size_t n = std::min(title.size(), area_size - 1);
    std::memcpy(area_begin, title.data(), n);
    std::memset(area_begin + n, 0, area_size - n);
}

}  // namespace agente::core
