// server.conf (src/core/config.cpp and the app's sections) on any file's bytes, as `--check-config`
// reads it: load_config(), then the app's own checks of its tables (src/app/sections.cpp). The only
// way to refuse a file is a ConfigError (it names file:line); any other exception escaping is a
// finding. Besides that: --print-config's output is TOML, and read back (when no secret was masked in
// it) it prints the same.
//
// Input: [AGENTE_HIBRIDO_CMD_ARGS '\0'] file. Without a NUL byte the whole input is the file.
#include <agente/app.hpp>
#include <agente/config.hpp>
#include "app/sections.hpp"
#include "require.hpp"

#include <toml++/toml.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace agente;

namespace {

// The file lives in memory (a memfd), named by its /proc path: nothing is written to disk.
class MemoryFile {
public:
    MemoryFile() : fd_(::memfd_create("server.conf", 0)), path_("/proc/self/fd/" + std::to_string(fd_)) {
        FUZZ_REQUIRE(fd_ >= 0);
    }
    const std::string& path() const { return path_; }
    void write(std::string_view text) {
        FUZZ_REQUIRE(::ftruncate(fd_, 0) == 0);
        FUZZ_REQUIRE(::pwrite(fd_, text.data(), text.size(), 0) == ssize_t(text.size()));
    }

private:
    int fd_;
    std::string path_;
};

bool loads(const std::string& path, const std::string& env_args, Config& out) {
    try {
        LoadedConfig loaded = load_config({"-c", path, "--check-config"}, env_args);
        check_app_tables(loaded.config);  // the app's on_master_config
        out = std::move(loaded.config);
        return true;
    } catch (const ConfigError&) {
        return false;
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    register_app_sections();
    // Secret files named by a relative path are looked for here: nowhere.
    ::setenv("CREDENTIALS_DIRECTORY", "/nonexistent-agente-fuzz", 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static MemoryFile file;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto nul = in.find('\0');
    std::string env_args(nul == std::string_view::npos ? std::string_view() : in.substr(0, nul));
    file.write(nul == std::string_view::npos ? in : in.substr(nul + 1));

    Config config;
    if (!loads(file.path(), env_args, config)) return 0;
    std::string printed = print_config(config);
    try {
        (void)toml::parse(printed);
    } catch (const toml::parse_error&) {
        FUZZ_REQUIRE(false);
    }
    if (printed.find("***") != std::string::npos) return 0;  // a masked secret does not read back
    file.write(printed);
    Config again;
    FUZZ_REQUIRE(loads(file.path(), env_args, again));
    FUZZ_REQUIRE(print_config(again) == printed);
    return 0;
}
