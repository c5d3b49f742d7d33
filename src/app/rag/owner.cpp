#include "app/rag/owner.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

namespace agente::rag {

namespace {

// Field 22 of /proc/PID/stat (starttime, in clock ticks since boot); "" when the process is gone or
// is a zombie (dead, not yet reaped by its parent).
std::string start_time(long pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) return {};
    // The command name (field 2) is in parentheses and may hold blanks: count fields after it.
    std::size_t close = stat.rfind(')');
    if (close == std::string::npos) return {};
    std::istringstream rest(stat.substr(close + 1));
    std::string field;
    for (int i = 3; i <= 22; ++i) {
        if (!(rest >> field)) return {};
        if (i == 3 && (field == "Z" || field == "X")) return {};
    }
    return field;
}

}  // namespace

std::string this_process_owner() {
    long pid = long(getpid());
    return std::to_string(pid) + ":" + start_time(pid);
}

bool owner_alive(const std::string& owner) {
    std::size_t colon = owner.find(':');
    if (colon == std::string::npos || colon == 0) return false;
    long pid = 0;
    try {
        pid = std::stol(owner.substr(0, colon));
    } catch (...) {
        return false;
    }
    if (pid <= 0) return false;
    std::string t = start_time(pid);
    return !t.empty() && t == owner.substr(colon + 1);
}

}  // namespace agente::rag
