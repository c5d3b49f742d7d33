#include "app/rag/index_files.hpp"

#include "app/json_text.hpp"
#include "app/rag/store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace agente::rag {

namespace fs = std::filesystem;

namespace {

// A file of a store that no meta names and that is older than this was left by a process killed
// mid-save (a save takes seconds, minutes for the largest stores); a younger one may be another
// dirty worker's save under way.
constexpr auto stray_after = std::chrono::hours(1);
// Bumped when the meta or the graph's layout changes: an older file is then ignored, not misread.
constexpr int format_version = 1;

std::string meta_name(long store) { return "store-" + std::to_string(store) + ".json"; }
std::string prefix_of(long store) { return "store-" + std::to_string(store) + "-"; }

// fsync of a file or a directory; false with errno set on failure.
bool sync_path(const fs::path& p, bool directory) {
    int fd = ::open(p.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = ::fsync(fd) == 0;
    int saved = errno;
    ::close(fd);
    errno = saved;
    return ok;
}

std::optional<std::string> read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

IndexFiles::IndexFiles(std::string dir) : dir_(dir.empty() ? std::string() : dir + "/rag-index") {}

std::optional<SavedGraph> IndexFiles::load(long store, const std::string& model, int dims) const {
    if (dir_.empty()) return std::nullopt;
    fs::path meta_path = fs::path(dir_) / meta_name(store);
    std::optional<std::string> text = read_text(meta_path);
    if (!text) return std::nullopt;   // never saved: nothing to say
    try {
        nlohmann::json meta = parse_json(*text);
        if (!meta.is_object() || meta.value("format", 0) != format_version) throw std::runtime_error("another format");
        if (meta.value("model", "") != model || meta.value("dims", 0) != dims) return std::nullopt;   // stale: rebuilt
        fs::path graph_path = fs::path(dir_) / meta.at("graph").get<std::string>();
        std::error_code ec;
        auto bytes = fs::file_size(graph_path, ec);
        if (ec || bytes != meta.at("graph_bytes").get<std::uintmax_t>()) throw std::runtime_error("graph file missing or cut short");
        SavedGraph s;
        s.labels = meta.at("labels").get<std::vector<long>>();
        s.graph = VectorIndex::load_graph(dims, graph_path.string());
        return s;
    } catch (const std::exception& e) {
        spdlog::warn("rag: the saved index of store {} is not usable, rebuilding it: {}", store, e.what());
        return std::nullopt;
    }
}

bool IndexFiles::save(long store, const std::string& model, const VectorIndex& index) const {
    if (dir_.empty()) return false;
    fs::path dir(dir_);
    fs::path graph_path = dir / (prefix_of(store) + new_id("") + ".hnsw");
    fs::path meta_path = dir / meta_name(store), tmp_path = dir / (meta_name(store) + ".tmp-" + new_id(""));
    try {
        fs::create_directories(dir);
        // What the meta names now: removed once the new pair is committed.
        std::string previous;
        if (auto old = read_text(meta_path)) {
            nlohmann::json m = parse_json(*old);
            if (m.is_object() && m.contains("graph") && m["graph"].is_string()) previous = m["graph"];
        }
        index.save_graph(graph_path.string());
        std::uintmax_t bytes = fs::file_size(graph_path);
        if (!sync_path(graph_path, false)) throw std::system_error(errno, std::generic_category(), "fsync");
        nlohmann::json meta = {{"format", format_version}, {"store", store}, {"model", model}, {"dims", index.dims()},
                               {"graph", graph_path.filename().string()}, {"graph_bytes", bytes},
                               {"labels", index.row_labels()}};
        {
            std::ofstream out(tmp_path, std::ios::binary | std::ios::trunc);
            out << json_text(meta);
            out.close();
            if (!out) throw std::runtime_error("cannot write " + tmp_path.string());
        }
        if (!sync_path(tmp_path, false)) throw std::system_error(errno, std::generic_category(), "fsync");
        fs::rename(tmp_path, meta_path);
        sync_path(dir, true);
        std::error_code ignored;
        if (!previous.empty() && previous != graph_path.filename().string()) fs::remove(dir / previous, ignored);
        sweep(store, graph_path.filename().string());
        return true;
    } catch (const std::exception& e) {
        std::error_code ignored;
        fs::remove(graph_path, ignored);
        fs::remove(tmp_path, ignored);
        spdlog::warn("rag: could not save the index of store {} (it is rebuilt after a restart): {}", store, e.what());
        return false;
    }
}

void IndexFiles::sweep(long store, const std::string& keep) const {
    std::error_code ec;
    auto now = fs::file_time_type::clock::now();
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        bool ours = name.starts_with(prefix_of(store)) || name.starts_with(meta_name(store) + ".tmp-");
        std::error_code age_ec;
        auto written = fs::last_write_time(it->path(), age_ec);
        if (ours && name != keep && !age_ec && now - written > stray_after) fs::remove(it->path(), age_ec);
    }
}

void IndexFiles::remove(long store) const {
    if (dir_.empty()) return;
    std::error_code ec;
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (name.starts_with(prefix_of(store)) || name.starts_with(meta_name(store))) fs::remove(it->path(), ec);
    }
}

}  // namespace agente::rag
