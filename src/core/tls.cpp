#include "core/tls.hpp"

#include <boost/asio/ssl/context.hpp>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace agente::core {

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;

// OpenSSL's ticket keys: a name (16 bytes), an HMAC key and an AES key (32 each).
constexpr std::size_t ticket_keys_size = 80;

// A PEM file is a few kilobytes; more than this is not one (and /dev/zero must not fill the master).
constexpr std::size_t max_pem_file = 1024 * 1024;

// Names the resumable sessions of this server, so that a session is not resumed by another
// server's context; OpenSSL refuses to resume a session with a verified client without one.
constexpr unsigned char session_id_context[] = "agente-hibrido";

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

[[noreturn]] void fail(std::string_view setting, const std::string& path, const std::string& what) {
    throw std::runtime_error(std::string(setting) + " " + quoted(path) + ": " + what);
}

// The last reason OpenSSL queued (the most specific), and the queue emptied for the next call.
std::string openssl_reason() {
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    const char* reason = e ? ERR_reason_error_string(e) : nullptr;
    return reason ? reason : "unknown OpenSSL error";
}

std::string read_pem(std::string_view setting, const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(setting, path, std::string("cannot read: ") + std::strerror(errno ? errno : ENOENT));
    std::string text;
    text.resize(max_pem_file + 1);
    in.read(text.data(), std::streamsize(text.size()));
    text.resize(std::size_t(in.gcount()));
    if (in.bad()) fail(setting, path, std::string("cannot read: ") + std::strerror(errno));
    if (text.size() > max_pem_file) fail(setting, path, "larger than 1 MiB: not a PEM file");
    return text;
}

// The setting and file the private key comes from.
std::pair<std::string_view, const std::string&> key_source(const Config& c) {
    if (c.keyfile.empty()) return {"certfile", c.certfile};
    return {"keyfile", c.keyfile};
}

// A key protected by a passphrase would make OpenSSL ask for it on the terminal, from a master that
// has none; there is no setting for one (gunicorn has none either).
int no_passphrase(char*, int, int, void*) { return 0; }

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

Bio read_only_bio(const std::string& text) { return Bio(BIO_new_mem_buf(text.data(), int(text.size())), BIO_free); }

// The leaf certificate first, then the intermediate ones that clients need to reach their CA.
void use_certificate_chain(SSL_CTX* ctx, const Config& c, const std::string& pem) {
    Bio bio = read_only_bio(pem);
    X509* leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, no_passphrase, nullptr);
    if (!leaf) fail("certfile", c.certfile, "no PEM certificate in it");
    bool used = SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    if (!used) fail("certfile", c.certfile, "cannot use its certificate: " + openssl_reason());
    SSL_CTX_clear_chain_certs(ctx);
    while (X509* next = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)) {
        if (SSL_CTX_add0_chain_cert(ctx, next) != 1) {
            X509_free(next);
            fail("certfile", c.certfile, "cannot use a certificate of its chain: " + openssl_reason());
        }
    }
    ERR_clear_error();  // the end of the text reads as "no start line"
}

void use_private_key(SSL_CTX* ctx, const Config& c, const std::string& pem) {
    auto [setting, path] = key_source(c);
    if (pem.find("ENCRYPTED") != std::string::npos)
        fail(setting, path, "the key is encrypted and no passphrase can be given; decrypt it (openssl pkey -in KEY "
                            "-out PLAIN) and let only the server's user read it");
    if (pem.find("PRIVATE KEY-----") == std::string::npos) fail(setting, path, "no PEM private key in it");
    Bio bio = read_only_bio(pem);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr);
    if (!key) fail(setting, path, "cannot read its private key: " + openssl_reason());
    bool used = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!used) fail(setting, path, "does not match the certificate of certfile " + quoted(c.certfile) + ": " + openssl_reason());
}

// Every certificate of ca_certs both verifies client certificates and is named in the server's
// request for one (so that a client holding several can pick the right one).
void add_client_cas(SSL_CTX* ctx, const Config& c, const std::string& pem) {
    Bio bio = read_only_bio(pem);
    int added = 0;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)) {
        bool ok = X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert) == 1 && SSL_CTX_add_client_CA(ctx, cert) == 1;
        X509_free(cert);
        if (!ok) fail("ca_certs", c.ca_certs, "cannot use a certificate of it: " + openssl_reason());
        ++added;
    }
    ERR_clear_error();  // the end of the text reads as "no start line"
    if (added == 0) fail("ca_certs", c.ca_certs, "no PEM certificate in it");
}

// "expired on Jan  2 00:00:00 2020 GMT", or "" while the leaf certificate is valid.
std::string validity_problem(SSL_CTX* ctx) {
    X509* leaf = SSL_CTX_get0_certificate(ctx);
    if (!leaf) return "";
    const ASN1_TIME* when = nullptr;
    std::string what;
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
        when = X509_get0_notAfter(leaf);
        what = "expired on ";
    } else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        when = X509_get0_notBefore(leaf);
        what = "not valid before ";
    } else {
        return "";
    }
    Bio out(BIO_new(BIO_s_mem()), BIO_free);
    ASN1_TIME_print(out.get(), when);
    char* text = nullptr;
    long n = BIO_get_mem_data(out.get(), &text);
    return what + std::string(text, std::size_t(n));
}

void write_all(int fd, const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error(std::string("cannot share the TLS files: ") + std::strerror(errno));
        done += std::size_t(n);
    }
}

}  // namespace

std::unique_ptr<ssl::context> make_server_context(const Config& c, const TlsFiles& files) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* ctx = context->native_handle();
    ERR_clear_error();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // No renegotiation (a client could make the server redo the costly half of a handshake at will);
    // the server's order of TLS 1.2 ciphers, so that `ciphers` ranks them.
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);

    use_certificate_chain(ctx, c, files.certificate_chain);
    use_private_key(ctx, c, files.private_key);
    if (!c.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, c.ciphers.c_str()) != 1)
        throw std::runtime_error("ciphers " + quoted(c.ciphers) + ": no cipher OpenSSL knows: " + openssl_reason());
    if (c.cert_reqs > 0) {
        add_client_cas(ctx, c, files.client_cas);
        int mode = SSL_VERIFY_PEER | (c.cert_reqs >= 2 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
        SSL_CTX_set_verify(ctx, mode, nullptr);
    }
    SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof session_id_context - 1);
    if (files.ticket_keys.size() == ticket_keys_size)
        SSL_CTX_set_tlsext_ticket_keys(ctx, const_cast<char*>(files.ticket_keys.data()), long(ticket_keys_size));
    return context;
}

std::optional<TlsFiles> read_tls_files(const Config& c) {
    if (c.certfile.empty()) return std::nullopt;
    TlsFiles files;
    files.certificate_chain = read_pem("certfile", c.certfile);
    files.private_key = c.keyfile.empty() ? files.certificate_chain : read_pem("keyfile", c.keyfile);
    if (c.cert_reqs > 0) files.client_cas = read_pem("ca_certs", c.ca_certs);
    files.ticket_keys.resize(ticket_keys_size);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(files.ticket_keys.data()), int(ticket_keys_size)) != 1)
        throw std::runtime_error("cannot make session ticket keys: " + openssl_reason());
    auto context = make_server_context(c, files);
    if (std::string problem = validity_problem(context->native_handle()); !problem.empty())
        spdlog::warn("certfile {}: the certificate {}; clients will refuse it", quoted(c.certfile), problem);
    return files;
}

// The texts, each as its length in decimal, a newline and the bytes.
int share_tls_files(const TlsFiles& files) {
    int fd = ::memfd_create("agente-hibrido-tls", 0);  // no MFD_CLOEXEC: the workers' exec inherits it
    if (fd < 0) throw std::runtime_error(std::string("cannot share the TLS files: ") + std::strerror(errno));
    try {
        for (const std::string* text : {&files.certificate_chain, &files.private_key, &files.client_cas, &files.ticket_keys})
            write_all(fd, std::to_string(text->size()) + "\n" + *text);
    } catch (...) {
        ::close(fd);
        throw;
    }
    return fd;
}

TlsFiles shared_tls_files(int fd) {
    std::string bytes;
    char block[16 * 1024];
    for (off_t at = 0;;) {
        ssize_t n = ::pread(fd, block, sizeof block, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(std::string("cannot read the TLS files: ") + std::strerror(errno));
        if (n == 0) break;
        bytes.append(block, std::size_t(n));
        at += n;
    }
    TlsFiles files;
    std::size_t pos = 0;
    for (std::string* text : {&files.certificate_chain, &files.private_key, &files.client_cas, &files.ticket_keys}) {
        std::size_t newline = bytes.find('\n', pos);
        if (newline == std::string::npos) throw std::runtime_error("the TLS files handed over are cut short");
        std::size_t size = std::stoul(bytes.substr(pos, newline - pos));
        if (bytes.size() - newline - 1 < size) throw std::runtime_error("the TLS files handed over are cut short");
        *text = bytes.substr(newline + 1, size);
        pos = newline + 1 + size;
    }
    return files;
}

}  // namespace agente::core
