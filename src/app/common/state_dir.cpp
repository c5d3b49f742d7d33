#include "app/common/state_dir.hpp"

#include <cstdlib>

namespace agente::app {

std::string state_directory(const std::string& fallback) {
    if (const char* dir = std::getenv("STATE_DIRECTORY"); dir && *dir) {
        std::string d(dir);
        return d.substr(0, d.find(':'));   // systemd lists several directories separated by ':'
    }
    return fallback;
}

}  // namespace agente::app
