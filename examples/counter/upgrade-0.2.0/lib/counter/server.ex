defmodule Counter.Server do
  @moduledoc """
  The count and the largest bump so far, kept in this process's state:
  `{count, max_bump}` (0.1.0 kept the count alone).

  `code_change/3` converts the state both ways: up from 0.1.0's integer, and
  down (`{:down, vsn}`) back to it when the upgrade is rolled back.
  """
  use GenServer

  def start_link(_opts), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  def get, do: GenServer.call(__MODULE__, :get)
  def bump, do: GenServer.call(__MODULE__, :bump)
  def bump(by) when is_integer(by) and by > 0, do: GenServer.call(__MODULE__, {:bump, by})
  def max_bump, do: GenServer.call(__MODULE__, :max_bump)

  @impl true
  def init(:ok), do: {:ok, {0, 0}}

  @impl true
  def handle_call(:get, _from, {count, _} = state), do: {:reply, count, state}
  def handle_call(:bump, from, state), do: handle_call({:bump, 1}, from, state)

  def handle_call({:bump, by}, _from, {count, max_bump}) do
    {:reply, count + by, {count + by, max(max_bump, by)}}
  end

  def handle_call(:max_bump, _from, {_, max_bump} = state), do: {:reply, max_bump, state}

  @impl true
  def code_change({:down, _vsn}, {count, _max_bump}, _extra), do: {:ok, count}
  def code_change(_vsn, count, _extra) when is_integer(count), do: {:ok, {count, 0}}
  def code_change(_vsn, state, _extra), do: {:ok, state}
end
