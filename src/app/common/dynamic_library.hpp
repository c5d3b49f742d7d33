// A library opened at run time where it is used rather than linked: loading one relocates its tables
// into private pages in every process of the binary (docs/benchmarks.md), so libraries only some
// processes need (libstemmer, libpq) are opened by those. Never closed, unless asked (close()): what
// it hands out lives as long as the process.
#pragma once

#include <string>

namespace agente::app {

class DynamicLibrary {
public:
    explicit DynamicLibrary(const char* soname);

    // `out` = the symbol, or null; the first failure (opening, or a missing symbol) is kept.
    template <typename F>
    void find(const char* symbol, F& out) {
        out = reinterpret_cast<F>(lookup(symbol));
    }

    // Unloads it (once no other handle holds it): its pages, relocated ones included, go back. Only
    // when nothing it handed out is used after.
    void close();

    // Why the library or one of its symbols is missing; empty when everything asked for was found.
    const std::string& error() const { return error_; }

private:
    void* lookup(const char* symbol);

    std::string soname_;
    void* handle_ = nullptr;
    std::string error_;
};

}  // namespace agente::app
