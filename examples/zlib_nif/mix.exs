defmodule Mix.Tasks.Compile.ZlibNif do
  @moduledoc """
  Builds the NIF (`c_src/zlib_nif.c`, linked with the system's zlib) with `make` into the
  application's `priv/`. A compiler of this project, so no Hex package (elixir_make) is needed.
  """
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    priv = Path.join(Mix.Project.app_path(), "priv")
    File.mkdir_p!(priv)
    erts = "erts-#{:erlang.system_info(:version)}"

    env = [
      {"PRIV_DIR", priv},
      {"ERTS_INCLUDE_DIR", Path.join([to_string(:code.root_dir()), erts, "include"])}
    ]

    case System.cmd("make", ["-C", "c_src", "--no-print-directory"],
           env: env,
           stderr_to_stdout: true,
           into: IO.stream()
         ) do
      {_, 0} -> {:ok, []}
      {_, status} -> Mix.raise("make failed (exit status #{status}) building the zlib NIF")
    end
  end
end

defmodule ZlibNif.MixProject do
  use Mix.Project

  def project do
    [
      app: :zlib_nif,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:zlib_nif] ++ Mix.compilers(),
      start_permanent: Mix.env() == :prod,
      deps: [],
      aliases: [test: "test --no-start"],
      releases: [
        zlib_nif: [include_executables_for: [:unix]]
      ]
    ]
  end

  # crypto, ssl and public_key: the release also checks that OpenSSL (libcrypto) came along.
  def application do
    [
      extra_applications: [:logger, :crypto, :public_key, :ssl],
      mod: {ZlibNif.Application, []}
    ]
  end
end
