// Ingesting one file: parse, chunk, embed what the cache lacks (committed batch by batch), then the
// one transaction that makes it searchable. And the CLI's paths.
#include "app/rag/engine.hpp"

#include "app/common/postgres.hpp"
#include "app/rag/chunker.hpp"
#include "app/rag/document.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace agente::rag {

namespace {

// Enough of the start of a file for the format's magic bytes (detect.cpp looks at the first KiB).
constexpr std::size_t sniff_bytes = 1024;
// How often the CLI looks at a file another process is ingesting for it.
constexpr auto await_poll_interval = std::chrono::milliseconds(200);

std::vector<std::string> expand(const std::vector<std::string>& paths) {
    namespace fs = std::filesystem;
    std::vector<std::string> out;
    for (const auto& p : paths) {
        std::error_code ec;
        fs::file_status st = fs::status(p, ec);
        if (ec || !fs::exists(st)) throw RagError(404, p + ": no such file or directory");
        if (fs::is_regular_file(st)) {
            out.push_back(p);
            continue;
        }
        std::vector<std::string> found;
        for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            std::string name = it->path().filename().string();
            if (!name.empty() && name[0] == '.') {
                if (it->is_directory()) it.disable_recursion_pending();
                continue;
            }
            if (it->is_regular_file()) found.push_back(it->path().string());
        }
        std::sort(found.begin(), found.end());
        out.insert(out.end(), found.begin(), found.end());
    }
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

IngestOutcome Engine::ingest(const Claim& c) {
    try {
        return ingest_claimed(c);
    } catch (const pg::Error& e) {
        if (pg::database_unavailable(e)) {
            std::lock_guard lock(abandoned_mutex_);
            abandoned_.push_back(c.attachment);
        }
        throw;
    }
}

IngestOutcome Engine::ingest_claimed(const Claim& c) {
    Lease db = this->db();
    IngestOutcome out;
    try {
        std::optional<FileRecord> file = db->file(c.file_id);
        std::optional<std::string> bytes = db->file_content(c.file_id);
        if (!file || !bytes) return fail(*db, c, "server_error", "the file was deleted");
        if (long(bytes->size()) > settings_.max_file_bytes)
            return fail(*db, c, "invalid_file", "the file is larger than max_file_size (" +
                                                   std::to_string(settings_.max_file_bytes) + " bytes)");
        Format format = detect_format(file->content_type, file->filename, std::string_view(*bytes).substr(0, sniff_bytes));
        Document doc = parse_document(*bytes, format);
        std::vector<Chunk> chunks = chunk_document(doc, c.chunking);
        if (chunks.empty()) throw IngestError("invalid_file", "the file has no text to index");
        if (long(chunks.size()) > settings_.max_chunks_per_file)
            throw IngestError("invalid_file", "the file makes " + std::to_string(chunks.size()) +
                                                  " chunks, more than max_chunks_per_file (" +
                                                  std::to_string(settings_.max_chunks_per_file) + ")");
        std::vector<StoredChunk> stored;
        stored.reserve(chunks.size());
        for (auto& ch : chunks) stored.push_back({ch, chunk_hash(ch)});

        std::string model = embedder_ ? embedder_->model() : std::string();
        std::optional<StoreRecord> store = db->store(c.store_id);
        if (!store) return fail(*db, c, "server_error", "the vector store was deleted");
        bool has_chunks = db->has_chunks(store->rowid);
        if (has_chunks && store->embedding_model != model)
            return fail(*db, c, "server_error",
                        "vector store " + c.store_id + " holds vectors of model \"" + store->embedding_model +
                            "\", but [rag] embedding_model is \"" + model + "\": use a new vector store, or set the model back");
        int dims = 0;
        if (!model.empty()) {
            std::vector<std::string> hashes;
            for (auto& s : stored) hashes.push_back(s.hash);
            auto cached = db->cached_vectors(model, hashes);
            // Each distinct missing text once, in order.
            std::map<std::string, std::size_t> missing;   // hash → index of its first chunk
            for (std::size_t i = 0; i < stored.size(); ++i) {
                if (cached[i]) {
                    dims = int(cached[i]->size());
                    ++out.reused;
                } else {
                    missing.emplace(stored[i].hash, i);
                }
            }
            std::vector<std::size_t> todo;
            for (auto& [h, i] : missing) todo.push_back(i);
            std::sort(todo.begin(), todo.end());
            auto stop = [&] { return stopping_.load(); };
            for (std::size_t b = 0; b < todo.size(); b += std::size_t(settings_.embedding_batch_size)) {
                if (stopping_) {
                    db->release(c.attachment, owner_);
                    out.status = "in_progress";
                    return out;
                }
                if (!db->still_claimed(c.attachment, owner_)) {
                    out.status = "cancelled";
                    return out;
                }
                std::size_t e = std::min(todo.size(), b + std::size_t(settings_.embedding_batch_size));
                std::vector<std::string> texts, batch_hashes;
                for (std::size_t k = b; k < e; ++k) {
                    texts.push_back(embedding_text(stored[todo[k]].chunk));
                    batch_hashes.push_back(stored[todo[k]].hash);
                }
                std::vector<std::vector<float>> vs = embedder_->embed(texts, stop);
                for (auto& v : vs) {
                    if (dims && int(v.size()) != dims)
                        throw EmbeddingError("the embedding model answered vectors of " + std::to_string(v.size()) +
                                             " dimensions, after " + std::to_string(dims));
                    dims = int(v.size());
                }
                db->put_vectors(model, batch_hashes, vs);   // kept even if this process dies before the end
                out.embedded += long(e - b);
            }
            out.reused = long(stored.size()) - out.embedded;
        }
        if (!db->complete(c, owner_, stored, model, dims, out.embedded)) {
            out.status = "cancelled";
            return out;
        }
        out.status = "completed";
        out.chunks = long(stored.size());
        return out;
    } catch (const IngestError& e) {
        return fail(*db, c, e.code(), e.what());
    } catch (const EmbeddingError& e) {
        if (stopping_) {
            db->release(c.attachment, owner_);
            out.status = "in_progress";
            return out;
        }
        return fail(*db, c, "server_error", e.what());
    } catch (const std::exception& e) {
        return fail(*db, c, "server_error", e.what());
    }
}

IngestOutcome Engine::ingest_or_await(Store& db, const AttachmentRecord& a, const std::string& file_id) {
    // Between attach() and claim(), a server's background ingest may have claimed the file: its
    // outcome is this file's, awaited while that process lives (claim() succeeds once it is gone).
    for (;;) {
        if (std::optional<Claim> c = db.claim(a.rowid, owner_)) return ingest(*c);
        std::optional<AttachmentRecord> now = db.attachment(a.store_id, file_id);
        if (!now) return IngestOutcome{"failed", 0, 0, 0, "detached by another process"};
        if (now->status != "in_progress")
            return IngestOutcome{now->status, now->chunks, now->embedded, 0, now->error_message};
        if (stopping_) return IngestOutcome{"in_progress", 0, 0, 0, "stopped"};
        std::this_thread::sleep_for(await_poll_interval);
    }
}

IngestSummary Engine::ingest_paths(const std::string& store_name, const std::vector<std::string>& paths,
                                   const IngestProgress& progress) {
    std::vector<std::string> files = expand(paths);
    Lease db = this->db();
    std::optional<StoreRecord> store = db->store_named(store_name);
    if (!store) store = db->create_store(store_name, settings_.language, "{}");
    IngestSummary sum;
    for (std::size_t i = 0; i < files.size(); ++i) {
        const std::string& path = files[i];
        if (progress) progress(path, i, files.size());
        std::string bytes = read_file(path);
        auto old = db->attachment_by_filename(store->id, path);
        if (old && old->first.status == "completed" && old->second.sha256 == sha256_hex(bytes)) {
            ++sum.skipped;
            continue;
        }
        FileRecord f = db->add_file(path, "assistants", "", bytes);
        AttachmentRecord a = db->attach(store->id, f.id, nlohmann::json{{"path", path}}.dump(), {});
        IngestOutcome o = ingest_or_await(*db, a, f.id);
        if (o.status == "completed") {
            ++sum.files;
            sum.chunks += o.chunks;
            sum.embedded += o.embedded;
            if (old) db->delete_file(old->second.id);   // the new version replaces it
        } else {
            ++sum.failed;   // left in the store, failed: the next run tries it again
            sum.failures.push_back(path + ": " + (o.error.empty() ? o.status : o.error));
        }
    }
    if (progress) progress("", files.size(), files.size());
    return sum;
}

}  // namespace agente::rag
