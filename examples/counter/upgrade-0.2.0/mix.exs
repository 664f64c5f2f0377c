defmodule Counter.MixProject do
  use Mix.Project

  # 0.2.0: these files copied over examples/counter (see its README.md).
  @version "0.2.0"

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
