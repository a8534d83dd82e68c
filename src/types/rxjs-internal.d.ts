// Types for the rxjs modules src/util/rx.ts loads one by one. They are in rxjs's package
// "exports" ("./internal/*"), which this project's module resolution ("node") does not read;
// the classes are the same ones 'rxjs' exports.
declare module 'rxjs/internal/Observable' {
  export { Observable } from 'rxjs';
}
declare module 'rxjs/internal/Subject' {
  export { Subject } from 'rxjs';
}
declare module 'rxjs/internal/Subscription' {
  export { Subscription } from 'rxjs';
}
declare module 'rxjs/internal/config' {
  export { config } from 'rxjs';
}
