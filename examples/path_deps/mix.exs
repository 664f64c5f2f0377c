defmodule PathDeps.MixProject do
  use Mix.Project

  def project do
    [
      app: :path_deps,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: deps(),
      aliases: [test: "test --no-start"],
      releases: [
        path_deps: [include_executables_for: [:unix]]
      ]
    ]
  end

  def application do
    [
      extra_applications: [:logger],
      mod: {PathDeps.Application, []}
    ]
  end

  # Two in-repo libraries; greeting itself depends on counter.
  defp deps do
    [
      {:greeting, path: "libs/greeting"},
      {:counter, path: "libs/counter"}
    ]
  end
end
