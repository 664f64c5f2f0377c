"""The Dockerfile `mix phx.gen.release --docker` generates, with what needs the internet replaced
(bench/phoenix.sh): every `RUN apt-get ...` and the locale generation go (the local images have
the packages; C.UTF-8 for en_US.UTF-8), Hex is installed from the kit's archive and hexpm pointed
at the local repository, and the esbuild binary (tools/) is copied with the assets.

Usage: phoenix_dockerfile.py DOCKERFILE REPO_URL (rewritten in place)."""
import sys

path, repo = sys.argv[1], sys.argv[2]
out, skipping = [], False
for line in open(path).read().split("\n"):
    if line.startswith("RUN apt-get") or line.startswith("RUN sed -i '/en_US.UTF-8/"):
        skipping = line.endswith("\\")
        continue
    if skipping:
        skipping = line.endswith("\\")
        continue
    out.append(line)
s = "\n".join(out)
s = s.replace("ENV LANG en_US.UTF-8", "ENV LANG C.UTF-8").replace("ENV LC_ALL en_US.UTF-8", "ENV LC_ALL C.UTF-8")
hex_install = (
    "COPY tools/hex-2.5.1.ez keys/hex.pem ./\n"
    "RUN mix archive.install ./hex-2.5.1.ez --force && \\\n"
    "    mix local.rebar rebar3 /usr/local/bin/rebar3 --force && \\\n"
    f"    mix hex.repo set hexpm --url {repo} --public-key ./hex.pem"
)
before = s
s = s.replace("RUN mix local.hex --force && \\\n    mix local.rebar --force", hex_install)
if s == before:
    sys.exit("the generated Dockerfile changed shape: no `mix local.hex` step found")
s = s.replace("COPY assets assets", "COPY assets assets\nCOPY tools tools")
open(path, "w").write(s)
