#include "app/common/retrieval.hpp"

#include "app/settings_reader.hpp"

#include <toml++/toml.h>

namespace agente::app {

const std::set<std::string>& retrieval_keys() {
    static const std::set<std::string> keys{"vector_stores", "max_sources", "retrieval_turns"};
    return keys;
}

Retrieval read_retrieval(const toml::table& t, const std::string& file, const std::string& prefix) {
    Retrieval r;
    r.vector_stores = get_strings(t, file, prefix, "vector_stores", true);
    r.max_sources = int(get_int(t, file, prefix, "max_sources", r.max_sources, 1, max_retrieval_sources));
    r.retrieval_turns = int(get_int(t, file, prefix, "retrieval_turns", r.retrieval_turns, 0, max_retrieval_turns));
    return r;
}

}  // namespace agente::app
