"""Certificates made at test time with the openssl CLI, in a temp directory: a CA, and the server
and client certificates it signs, valid for two days or expired since 2020 (`openssl ca` sets any
dates; `openssl x509 -req` cannot)."""
import os
import subprocess


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def new_key_and_request(d, name, cn):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)


class Authority:
    """A CA in `d`: its certificate is `self.cert`; issue() signs certificates with it."""

    def __init__(self, d, name):
        self.dir, self.name = d, name
        self.cert = os.path.join(d, f"{name}.pem")
        self.key = os.path.join(d, f"{name}.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", f"/CN=agente test {name}",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                cwd=d)
        self.db = os.path.join(d, f"{name}-db")
        os.makedirs(self.db)
        open(os.path.join(self.db, "index.txt"), "w").close()
        with open(os.path.join(self.db, "serial"), "w") as f:
            f.write("1000\n")
        self.conf = os.path.join(self.db, "ca.cnf")
        with open(self.conf, "w") as f:
            f.write(f"[ca]\ndefault_ca = this\n[this]\ndatabase = {self.db}/index.txt\nnew_certs_dir = {self.db}\n"
                    f"certificate = {self.cert}\nprivate_key = {self.key}\nserial = {self.db}/serial\n"
                    "default_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\n"
                    "[any]\ncommonName = supplied\n")

    def issue(self, name, dns=(), ips=(), client=False, expired=False):
        """A certificate and its key, signed by this CA: (cert path, key path). A server certificate
        names `dns` and `ips`; a client certificate has clientAuth."""
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            names = [f"DNS:{n}" for n in dns] + [f"IP:{a}" for a in ips]
            if names:
                f.write(f"subjectAltName={','.join(names)}\n")
            f.write(f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\nbasicConstraints=CA:FALSE\n")
        cn = dns[0] if dns else (ips[0] if ips else f"client {name}")
        new_key_and_request(self.dir, name, cn)
        dates = ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"] if expired else ["-days", "2"]
        openssl("ca", "-batch", "-config", self.conf, "-in", f"{name}.csr", "-out", f"{name}.pem", "-notext",
                "-extfile", ext, *dates, cwd=self.dir)
        return os.path.join(self.dir, f"{name}.pem"), os.path.join(self.dir, f"{name}.key")
