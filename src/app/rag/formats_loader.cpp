// Opens the formats module (formats/module.hpp) once per process, on the first document that needs
// it, and calls its parser. HTTP workers never get here, so they never map poppler and its kin.
#include "app/rag/formats/module.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <vector>

// Weak: resolved when a binary links the parsers in (the unit tests, bench/rag), null in the server,
// which opens the module instead.
#pragma weak agente_rag_formats_abi
#pragma weak agente_rag_parse_formatted

namespace agente::rag {

namespace {

namespace fs = std::filesystem;
using ParseFn = decltype(&agente_rag_parse_formatted);
using AbiFn = decltype(&agente_rag_formats_abi);

struct Formats {
    ParseFn parse = nullptr;
    std::string error;   // why `parse` is null
};

// Beside the binary (the build tree), then <prefix>/lib/agente-hibrido/ for <prefix>/bin/ (scripts/install).
std::vector<fs::path> candidates() {
    std::error_code ec;
    std::string exe = fs::read_symlink("/proc/self/exe", ec).string();
    constexpr std::string_view replaced = " (deleted)";   // the binary was replaced since it started
    if (exe.size() > replaced.size() && exe.ends_with(replaced)) exe.resize(exe.size() - replaced.size());
    if (ec || exe.empty()) return {};
    fs::path dir = fs::path(exe).parent_path();
    return {dir / formats_module_name, dir.parent_path() / "lib" / "agente-hibrido" / formats_module_name};
}

std::string dl_error() {
    const char* why = ::dlerror();
    return why ? why : "unknown error";
}

Formats open_module() {
    Formats f;
    if (&agente_rag_parse_formatted != nullptr) {
        f.parse = &agente_rag_parse_formatted;
        return f;
    }
    std::string looked;
    for (const fs::path& path : candidates()) {
        std::error_code ec;
        if (!fs::exists(path, ec)) {
            looked += (looked.empty() ? "" : ", ") + path.string();
            continue;
        }
        void* library = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!library) {
            f.error = "cannot load " + path.string() + ": " + dl_error();
            return f;
        }
        auto abi = reinterpret_cast<AbiFn>(::dlsym(library, "agente_rag_formats_abi"));
        auto parse = reinterpret_cast<ParseFn>(::dlsym(library, "agente_rag_parse_formatted"));
        if (!abi || !parse || abi() != formats_abi) {
            ::dlclose(library);
            f.error = path.string() + " is from another build of agente-hibrido: install the binary and the module together";
            return f;
        }
        f.parse = parse;   // never closed: documents are parsed for the life of the process
        return f;
    }
    f.error = std::string("the document parsers' module ") + formats_module_name + " is not installed (looked for " +
              looked + ")";
    return f;
}

}  // namespace

Document parse_formatted(std::string_view bytes, Format format) {
    static const Formats formats = open_module();
    if (!formats.parse) throw IngestError("server_error", formats.error);
    Document out;
    std::string code, message;
    if (!formats.parse(bytes, format, out, code, message)) throw IngestError(code, message);
    return out;
}

}  // namespace agente::rag
