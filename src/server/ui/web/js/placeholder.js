// Placeholder page script until the chat page (js/app.js) lands: shows the models view.
import { mountModels } from './models.js';

mountModels(document.getElementById('models'));
