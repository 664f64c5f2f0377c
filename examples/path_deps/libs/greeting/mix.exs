defmodule Greeting.MixProject do
  use Mix.Project

  def project do
    [app: :greeting, version: "0.2.0", elixir: "~> 1.14", deps: [{:counter, path: "../counter"}]]
  end

  def application, do: []
end
