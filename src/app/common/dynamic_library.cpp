#include "app/common/dynamic_library.hpp"

#include <dlfcn.h>

namespace agente::app {

DynamicLibrary::DynamicLibrary(const char* soname) : soname_(soname) {
    handle_ = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!handle_) {
        const char* why = ::dlerror();
        error_ = "cannot load " + soname_ + ": " + (why ? why : "unknown error");
    }
}

void* DynamicLibrary::lookup(const char* symbol) {
    if (!handle_) return nullptr;
    void* found = ::dlsym(handle_, symbol);
    if (!found && error_.empty()) error_ = soname_ + " has no " + symbol;
    return found;
}

void DynamicLibrary::close() {
    if (handle_) ::dlclose(handle_);
    handle_ = nullptr;
}

}  // namespace agente::app
