#include "core/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <stdexcept>

namespace agente::core {

// Only root can switch; gunicorn does the same in its workers.
void drop_privileges(const Config& c) {
    if (::geteuid() != 0) return;
    if (!c.group.empty()) {
        group* g = ::getgrnam(c.group.c_str());
        if (!g || ::setgid(g->gr_gid) != 0) throw std::runtime_error("cannot switch to group " + c.group);
    }
    if (!c.user.empty()) {
        passwd* p = ::getpwnam(c.user.c_str());
        if (!p) throw std::runtime_error("no such user " + c.user);
        if (c.group.empty() && ::setgid(p->pw_gid) != 0) throw std::runtime_error("cannot switch group");
        if (::initgroups(p->pw_name, ::getgid()) != 0 || ::setuid(p->pw_uid) != 0)
            throw std::runtime_error("cannot switch to user " + c.user);
    }
}

}  // namespace agente::core
