defmodule Greeting do
  @moduledoc "Greets someone and tells how many times they were greeted (kept by `Counter`)."

  @spec greet(String.t()) :: String.t()
  def greet(name), do: "hello, #{name}! (greeting ##{Counter.next({:greeting, name})})"
end
