defmodule Counter.Protocol do
  @moduledoc """
  The commands, one per line:

      get       the count
      bump      adds 1, answers the new count
      version   the running release's version of :counter
  """

  @spec handle(String.t()) :: String.t()
  def handle("get"), do: Integer.to_string(Counter.Server.get())
  def handle("bump"), do: Integer.to_string(Counter.Server.bump())
  def handle("version"), do: version()
  def handle(other), do: "error: unknown command #{inspect(other)}"

  def version, do: Application.spec(:counter, :vsn) |> to_string()
end
