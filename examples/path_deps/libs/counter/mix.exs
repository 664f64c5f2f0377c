defmodule Counter.MixProject do
  use Mix.Project

  def project do
    [app: :counter, version: "0.3.0", elixir: "~> 1.14", deps: []]
  end

  def application do
    [mod: {Counter.Application, []}]
  end
end
