defmodule Counter.Server do
  @moduledoc "The count, kept in this process's state (an integer in 0.1.0)."
  use GenServer

  def start_link(_opts), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  def get, do: GenServer.call(__MODULE__, :get)
  def bump, do: GenServer.call(__MODULE__, :bump)

  @impl true
  def init(:ok), do: {:ok, 0}

  @impl true
  def handle_call(:get, _from, count), do: {:reply, count, count}
  def handle_call(:bump, _from, count), do: {:reply, count + 1, count + 1}
end
