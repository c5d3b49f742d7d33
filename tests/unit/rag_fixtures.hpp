// Reading the RAG tests' fixture files (tests/fixtures/rag) and making scratch directories.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace agente::rag::testing {

inline std::string fixture_path(const std::string& name) {
    return std::string(AGENTE_SOURCE_DIR) + "/tests/fixtures/rag/" + name;
}

inline std::string fixture(const std::string& name) {
    std::ifstream in(fixture_path(name), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A fresh directory under the system's temporary directory, removed with the object.
class ScratchDir {
public:
    ScratchDir() {
        std::string t = (std::filesystem::temp_directory_path() / "agente-rag-XXXXXX").string();
        path_ = mkdtemp(t.data());
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace agente::rag::testing
