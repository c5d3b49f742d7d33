#include "app/rag/stemmer_library.hpp"

#include "app/common/dynamic_library.hpp"

namespace agente::rag {

namespace {

// The Debian package's soname (libstemmer0d); the -dev package's libstemmer.so is only a link to it.
constexpr const char* soname = "libstemmer.so.0d";

StemmerLibrary open_library() {
    StemmerLibrary s;
    app::DynamicLibrary library(soname);
    library.find("sb_stemmer_list", s.list);
    library.find("sb_stemmer_new", s.create);
    library.find("sb_stemmer_delete", s.destroy);
    library.find("sb_stemmer_stem", s.stem);
    library.find("sb_stemmer_length", s.length);
    s.error = library.error();
    return s;  // never closed: the stemmers it makes live as long as the connections
}

}  // namespace

std::vector<std::string> stemmer_languages(std::string& error) {
    app::DynamicLibrary library(soname);
    decltype(&::sb_stemmer_list) list = nullptr;
    library.find("sb_stemmer_list", list);
    error = library.error();
    std::vector<std::string> out;
    if (list)
        for (const char** l = list(); *l; ++l) out.emplace_back(*l);
    library.close();  // a handle stemmer_library() holds keeps it loaded
    return out;
}

const StemmerLibrary& stemmer_library() {
    static const StemmerLibrary library = open_library();
    return library;
}

}  // namespace agente::rag
