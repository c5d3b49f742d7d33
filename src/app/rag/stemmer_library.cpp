#include "app/rag/stemmer_library.hpp"

#include <dlfcn.h>

namespace agente::rag {

namespace {

// The Debian package's soname (libstemmer0d); the -dev package's libstemmer.so is only a link to it.
constexpr const char* soname = "libstemmer.so.0d";

template <typename F>
void find(void* library, const char* name, F& out, std::string& error) {
    out = reinterpret_cast<F>(::dlsym(library, name));
    if (!out && error.empty()) error = std::string(soname) + " has no " + name;
}

StemmerLibrary open_library() {
    StemmerLibrary s;
    void* library = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char* why = ::dlerror();
        s.error = std::string("cannot load ") + soname + ": " + (why ? why : "unknown error");
        return s;
    }
    find(library, "sb_stemmer_list", s.list, s.error);
    find(library, "sb_stemmer_new", s.create, s.error);
    find(library, "sb_stemmer_delete", s.destroy, s.error);
    find(library, "sb_stemmer_stem", s.stem, s.error);
    find(library, "sb_stemmer_length", s.length, s.error);
    return s;  // never closed: the stemmers it makes live as long as the connections
}

}  // namespace

const StemmerLibrary& stemmer_library() {
    static const StemmerLibrary library = open_library();
    return library;
}

}  // namespace agente::rag
