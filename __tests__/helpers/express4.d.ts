// The dev dependency alias express4 → express@4 has no typings of its own; its API is the part
// of Express 5's that the tests use.
declare module 'express4' {
  import express from 'express';
  export default express;
}
