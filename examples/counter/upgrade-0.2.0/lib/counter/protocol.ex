defmodule Counter.Protocol do
  @moduledoc """
  The commands, one per line:

      get       the count
      bump      adds 1, answers the new count
      bump N    adds N (new in 0.2.0), answers the new count
      max       the largest bump so far (new in 0.2.0)
      version   the running release's version of :counter
  """

  @spec handle(String.t()) :: String.t()
  def handle("get"), do: Integer.to_string(Counter.Server.get())
  def handle("bump"), do: Integer.to_string(Counter.Server.bump())
  def handle("max"), do: Integer.to_string(Counter.Server.max_bump())
  def handle("version"), do: version()

  def handle("bump " <> n) do
    case Integer.parse(n) do
      {by, ""} when by > 0 -> Integer.to_string(Counter.Server.bump(by))
      _ -> "error: bump takes a positive integer"
    end
  end

  def handle(other), do: "error: unknown command #{inspect(other)}"

  def version, do: Application.spec(:counter, :vsn) |> to_string()
end
