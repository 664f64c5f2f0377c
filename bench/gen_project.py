#!/usr/bin/env python3
"""Generates a larger Mix project for the rebuild benchmark (bench/rebuild.sh).

    bench/gen_project.py OUT_DIR [--app-modules N] [--libs N] [--lib-modules N] [--priv-mib N]

OUT_DIR/ gets a release-ready Mix project `bigapp`:
  - an HTTP endpoint like examples/hello_web (`:gen_tcp`, OTP only): GET / answers 200 with
    the line from `Bigapp.Router.greeting/0`, the line the benchmark's one-line change edits;
  - N own modules (lib/bigapp/gen/) with pattern-matching functions and compiled-in tables;
  - N path deps (libs/lib_K, in mix.exs as `path: "libs/lib_K"`), each with its own modules and
    priv/ data files (priv files count towards the release's size as they do in real deps);
  - config/config.exs, config/prod.exs, config/runtime.exs, as a Phoenix project has them.
Only OTP and path deps: nothing is fetched. Same arguments, same files (a seeded generator, no
clock, sorted output). The defaults make a release of about 50 MB.
"""

import argparse
import os
import random
import sys

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar "
    "papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu order invoice customer "
    "account ledger payment shipment warehouse product catalog price discount tax region country "
    "currency session token report metric event stream batch queue worker schedule"
).split()


def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(text)


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def gen_module(rng, name, funcs, table_rows):
    """One module: a lookup table compiled in as a map, and functions with several clauses."""
    out = [f"defmodule {name} do", f'  @moduledoc "Generated module {name}."', ""]
    rows = ",\n".join(
        f'    "{rng.choice(WORDS)}_{i}" => {{{rng.randint(0, 10**6)}, "{sentence(rng, 8)}"}}'
        for i in range(table_rows)
    )
    out += ["  @table %{", rows, "  }", "", "  def table, do: @table", ""]
    out += ["  def lookup(key), do: Map.get(@table, key)", ""]
    for f in range(funcs):
        a, b, c = rng.sample(WORDS, 3)
        k = rng.randint(2, 9)
        out += [
            f"  def f{f}(:{a}, x) when is_integer(x), do: x * {k} + {rng.randint(0, 99)}",
            f'  def f{f}(:{b}, x) when is_binary(x), do: x <> "{c}"',
            f"  def f{f}(:{c}, %{{{a}: v}}), do: {{:ok, v}}",
            f"  def f{f}(_tag, list) when is_list(list), do: Enum.map(list, &(&1 * {k}))",
            f"  def f{f}(tag, other), do: {{:error, {{tag, other}}}}",
            "",
        ]
    out += ["end", ""]
    return "\n".join(out)


def gen_priv(rng, path, size):
    """A data file that compresses like real assets (half text, half noise)."""
    chunks, total = [], 0
    while total < size:
        if rng.random() < 0.5:
            c = (sentence(rng, 64) + "\n").encode()
        else:
            c = rng.randbytes(512)
        chunks.append(c)
        total += len(c)
    write(path, b"".join(chunks)[:size], "wb")


MIX_EXS = """defmodule {mod}.MixProject do
  use Mix.Project

  def project do
    [
      app: :{app},
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: deps(){extra}
    ]
  end

  def application do
    [{application}]
  end

  defp deps do
    [{deps}]
  end
end
"""

# The application and the HTTP server are examples/hello_web's, renamed: one copy of that code.
HELLO_WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "hello_web", "lib", "hello_web")


def from_hello_web(name):
    with open(os.path.join(HELLO_WEB, name), encoding="utf-8") as f:
        return f.read().replace("HelloWeb", "Bigapp").replace("hello_web", "bigapp")


ROUTER = """defmodule Bigapp.Router do
  @moduledoc "Maps a request to a status and a plain-text body."

  def greeting, do: "hello from bigapp"

  def handle("GET", "/"), do: {200, greeting() <> " (" <> Integer.to_string(modules()) <> " modules)\\n"}
  def handle("GET", "/health"), do: {200, "ok\\n"}
  def handle("GET", _path), do: {404, "not found\\n"}
  def handle(_method, _path), do: {405, "method not allowed\\n"}

  def modules, do: length(Application.spec(:bigapp, :modules))
  def version, do: Application.spec(:bigapp, :vsn) |> to_string()
end
"""

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--app-modules", type=int, default=360)
    p.add_argument("--libs", type=int, default=4)
    p.add_argument("--lib-modules", type=int, default=60)
    p.add_argument("--priv-mib", type=int, default=34, help="priv/ data spread over the libs")
    p.add_argument("--seed", type=int, default=6)
    a = p.parse_args()
    if os.path.exists(a.out) and os.listdir(a.out):
        sys.exit(f"gen_project: {a.out} exists and is not empty")
    rng = random.Random(a.seed)
    root = a.out
    libs = [f"lib_{chr(ord('a') + i)}" for i in range(a.libs)]

    deps = ", ".join(f'{{:{lib}, path: "libs/{lib}"}}' for lib in libs)
    release = ',\n      releases: [bigapp: [include_executables_for: [:unix]]]'
    write(f"{root}/mix.exs", MIX_EXS.format(
        mod="Bigapp", app="bigapp", extra=release, deps=deps,
        application="extra_applications: [:logger], mod: {Bigapp.Application, []}"))
    write(f"{root}/.gitignore", "/_build/\n/deps/\n")
    write(f"{root}/.formatter.exs", '[inputs: ["mix.exs", "{config,lib}/**/*.{ex,exs}"]]\n')
    write(f"{root}/config/config.exs", "import Config\n\nconfig :logger, level: :info\n")
    write(f"{root}/config/prod.exs", "import Config\n")
    write(f"{root}/config/runtime.exs", "import Config\n")
    write(f"{root}/lib/bigapp/application.ex", from_hello_web("application.ex"))
    write(f"{root}/lib/bigapp/router.ex", ROUTER)
    write(f"{root}/lib/bigapp/server.ex", from_hello_web("server.ex"))
    for i in range(a.app_modules):
        name = f"Bigapp.Gen.M{i:04d}"
        write(f"{root}/lib/bigapp/gen/m{i:04d}.ex", gen_module(rng, name, funcs=10, table_rows=30))

    priv_each = a.priv_mib * 1024 * 1024 // max(1, a.libs)
    for lib in libs:
        mod = "".join(w.capitalize() for w in lib.split("_"))
        d = f"{root}/libs/{lib}"
        write(f"{d}/mix.exs", MIX_EXS.format(
            mod=mod, app=lib, extra="", deps="", application="extra_applications: [:logger]"))
        for i in range(a.lib_modules):
            write(f"{d}/lib/{lib}/m{i:04d}.ex",
                  gen_module(rng, f"{mod}.M{i:04d}", funcs=12, table_rows=80))
        for j in range(4):
            gen_priv(rng, f"{d}/priv/data/part{j}.bin", priv_each // 4)


if __name__ == "__main__":
    main()
