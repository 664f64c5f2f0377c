defmodule Counter.MixProject do
  use Mix.Project

  # 0.1.0; upgrade-0.2.0/ holds the files that make 0.2.0 (README.md).
  @version "0.1.0"

  def project do
    [
      app: :counter,
      version: @version,
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: [],
      aliases: [test: "test --no-start"],
      releases: [
        counter: [include_executables_for: [:unix]]
      ]
    ]
  end

  def application do
    [
      # :sasl runs release_handler, which applies hot upgrades.
      extra_applications: [:logger, :sasl],
      mod: {Counter.Application, []}
    ]
  end
end
